/**
 * The Bay ↔ Ship protocol in one place: the types and operations generated from
 * openapi/ship.v1.yaml (shared by Bay's ShipClient and Ship's routes), plus the
 * few constants both sides must agree on.
 */
export * from "./generated/schemas.ts";
export { operations as shipOperations, type OperationId as ShipOperationId } from "./generated/operations.ts";

export * from "./constants.ts";
export { routes as shipRoutes, type RouteId as ShipRouteId } from "./generated/routes.ts";
export { MAX_NONCE_LENGTH, NONCE_HEADER, newNonce, PROOF_HEADER, proofFor, proofValid, shipBearer, shipProof } from "./auth.ts";

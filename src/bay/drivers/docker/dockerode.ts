/**
 * dockerode, as Bay loads it: with the dependencies it can never use (ssh2,
 * gRPC) replaced by stand-ins (./unused-dependencies.ts). Import dockerode's
 * value from here, never from "dockerode" directly; type-only imports may name
 * "dockerode".
 *
 * A `require` rather than an `import`: dockerode is CommonJS and requires ssh2
 * and gRPC while it is evaluated, so the stand-ins must be installed first, and
 * only a statement in this module's body is ordered after the installation.
 */
import type DockerodeClass from "dockerode";
import { installUnusedDependencyStubs } from "./unused-dependencies.ts";

installUnusedDependencyStubs();

/** dockerode's client class. */
export const Docker: typeof DockerodeClass = require("dockerode");
export type Docker = DockerodeClass;

/** Ship's own version (reported by /meta). */
export const SHIP_VERSION = "0.1.0";
/** The API version Bay checks against. */
export const SHIP_API_VERSION = "v1";

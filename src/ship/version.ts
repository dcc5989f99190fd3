/** Ship's own version (reported by /meta). */
export const SHIP_VERSION = "0.1.0";

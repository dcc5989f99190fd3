/** The header index.ts passes Bay's request id to envd's Connect handlers in (they see only the Request). */
export const REQUEST_ID_HEADER = "x-bay-request-id";

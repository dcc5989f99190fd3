/** Bay's runtime images under test: `BAY_SHIP_TAG` selects another build than `latest`. */
import { shipImages } from "../../src/bay/config.ts";

export const SHIP_TAG = process.env.BAY_SHIP_TAG || "latest";
export const SHIP_IMAGE = shipImages(SHIP_TAG).ship;
export const SHIP_DATA_IMAGE = shipImages(SHIP_TAG).data;

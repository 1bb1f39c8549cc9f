export { bitmapBytes, Probe } from "./probe.js";
export type { ReplayOptions } from "./replay.js";
export { replayScenario, vfioParamsOf } from "./replay.js";
export { errname, jsonStr, Line } from "./transcript.js";

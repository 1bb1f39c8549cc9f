export type { BoardSysOptions } from "./board-sys.js";
export { BoardSys } from "./board-sys.js";
export { bitmapBytes, Probe } from "./probe.js";
export type { ReplayOptions } from "./replay.js";
export { replayScenario, vfioParamsOf } from "./replay.js";
export type { ProbeDevice, ProbeSys, SysResult } from "./sys.js";
export { errname, jsonStr, Line } from "./transcript.js";

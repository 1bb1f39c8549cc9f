export { bitmapBytes, Probe } from "./probe.js";
export type { ProbeLibcOptions } from "./probe-libc.js";
export { ProbeLibc } from "./probe-libc.js";
export type { ReplayOptions } from "./replay.js";
export { replayRecords, replayScenario, vfioParamsOf } from "./replay.js";
export type { ProbeDevice, ProbeSys, SysResult } from "./sys.js";
export type { RecordValue, TranscriptRecord } from "./transcript.js";
export { errname, jsonStr, Line } from "./transcript.js";

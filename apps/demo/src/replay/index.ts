export type { TranscriptDiff } from "./diff.js";
export { diffTranscripts, formatDiff, HOST_FIELDS, LOG_FIELDS } from "./diff.js";
export { bitmapBytes, Probe } from "./probe.js";
export type { ReplayOptions } from "./replay.js";
export { replayScenario, vfioParamsOf } from "./replay.js";
export type { BodyLine, Command, ErrorRecord, Scenario, ScenarioHeader } from "./scenario.js";
export { BASE_LEN, BASE_VA, parseCommand, parseNum, parseScenario, tokenize } from "./scenario.js";
export { errname, jsonStr, Line } from "./transcript.js";

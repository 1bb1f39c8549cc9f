export type { TranscriptDiff } from "./diff.js";
export { diffTranscripts, formatDiff, HOST_FIELDS, LOG_FIELDS } from "./diff.js";
export type { Arch, Fixture, TranscriptRecord } from "./fixtures.js";
export {
  ARCHES,
  FIXTURE_ROOT,
  firstRecord,
  fixtureSets,
  listFixtures,
  readRecords,
  readScenario,
  readTranscript,
  transcriptRecords,
} from "./fixtures.js";
export type {
  BodyLine,
  Command,
  DevOp,
  ErrorRecord,
  IommuTypeName,
  ProbeMode,
  Scenario,
  ScenarioHeader,
} from "./scenario.js";
export {
  BASE_LEN,
  BASE_VA,
  IOMMUFD_COMMANDS,
  MAXDEV,
  MAXTOK,
  parseCommand,
  parseNum,
  parseScenario,
  tokenize,
} from "./scenario.js";

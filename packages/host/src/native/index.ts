export type { ClientVma } from "./client-memory.js";
export { ClientMemory } from "./client-memory.js";
export { ClientProcess, ClientWindow } from "./client-process.js";
export type { DoorServer, ServeOptions } from "./door-server.js";
export { OP, serveBoard } from "./door-server.js";
export type { DoorKind, ExecOptions, ExecResult } from "./exec.js";
export { DOOR_KINDS, execThroughDoor } from "./exec.js";
export {
  buildPreload,
  buildSeccompDoor,
  cacheDir,
  findCompiler,
  preloadSource,
  seccompDoorSource,
} from "./preload-build.js";

export type { ClientVma } from "./client-memory.js";
export { ClientMemory } from "./client-memory.js";
export { ClientProcess, ClientWindow } from "./client-process.js";
export type { DoorServer, ServeOptions } from "./door-server.js";
export { OP, serveBoard } from "./door-server.js";
export type { ExecOptions, ExecResult } from "./exec.js";
export { execThroughDoor } from "./exec.js";
export { buildPreload, cacheDir, findCompiler, preloadSource } from "./preload-build.js";

import { type Options } from "tsup";
/** Library build: ESM + CJS + d.ts with a typed exports map. */
export declare function library(
  entry?: Options["entry"],
): Options | Options[] | ((overrideOptions: Options) => Options | Options[] | Promise<Options | Options[]>);
//# sourceMappingURL=tsup.shared.d.ts.map

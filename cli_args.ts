/**
 * Command-line flags of the operator commands and the parser: the subset of node:util's
 * `parseArgs` they use (long `--name value` / `--name=value`, short `-x`, booleans, repeated
 * strings, positionals, `--` ending the flags), with its error messages.
 *
 * Why not node:util itself: the agent program holds these commands, and importing any `node:`
 * module makes every run — every monitor — load Deno's Node compatibility layer (libc.ts has the
 * figures).
 *
 * @example
 * ```ts
 * const { values, positionals } = parseFlags(["--to", "db2", "x"], {
 *   options: { to: { type: "string" }, help: { type: "boolean", short: "h" } },
 *   allowPositionals: true,
 * });
 * // values.to === "db2", positionals == ["x"]
 * ```
 *
 * @module
 */

/** One flag. */
export interface FlagSpec {
  /** A string takes a value; a boolean takes none. */
  type: "string" | "boolean";
  /** A one-letter alias (`-h`). */
  short?: string;
  /** Repeatable: its values are collected in order. */
  multiple?: boolean;
}

type FlagValue<F extends FlagSpec> = F["type"] extends "string"
  ? F["multiple"] extends true ? string[] : string
  : F["multiple"] extends true ? boolean[]
  : boolean;

/** The parsed values, by flag name (absent when not given). */
export type FlagValues<T extends Record<string, FlagSpec>> = {
  -readonly [K in keyof T]?: FlagValue<T[K]>;
};

/** What {@link parseFlags} is given. */
export interface ParseFlagsOptions<T extends Record<string, FlagSpec>> {
  /** The flags known. */
  options: T;
  /** Whether arguments that are not flags are accepted (default false). */
  allowPositionals?: boolean;
}

/** A usage error: an unknown flag, a missing or unexpected value, a stray argument. */
export class FlagError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/** Parses `args`; throws {@link FlagError} with node:util's wording for what it refuses. */
export function parseFlags<const T extends Record<string, FlagSpec>>(
  args: readonly string[],
  opts: ParseFlagsOptions<T>,
): { values: FlagValues<T>; positionals: string[] } {
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(opts.options)) {
    if (spec.short !== undefined) byShort.set(spec.short, name);
  }
  const set = (name: string, value: string | boolean) => {
    if (opts.options[name].multiple) ((values[name] ??= []) as unknown[]).push(value);
    else values[name] = value;
  };
  const positional = (arg: string) => {
    if (!opts.allowPositionals) {
      throw new FlagError(
        `Unexpected argument '${arg}'. This command does not take positional arguments`,
      );
    }
    positionals.push(arg);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      for (const rest of args.slice(i + 1)) positional(rest);
      break;
    }
    let name: string | undefined;
    let shown: string;
    let inline: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      shown = `--${name}`;
      if (!Object.hasOwn(opts.options, name)) throw new FlagError(`Unknown option '${shown}'`);
    } else if (arg.startsWith("-") && arg.length > 1) {
      shown = arg.slice(0, 2);
      name = byShort.get(arg[1]);
      if (name === undefined) throw new FlagError(`Unknown option '${shown}'`);
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      positional(arg);
      continue;
    }
    const spec = opts.options[name];
    if (spec.type === "boolean") {
      if (inline !== undefined) {
        throw new FlagError(`Option '${shown}' does not take an argument`);
      }
      set(name, true);
      continue;
    }
    if (inline === undefined) {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("-")) {
        throw new FlagError(`Option '${shown} <value>' argument missing`);
      }
      inline = next;
      i++;
    }
    set(name, inline);
  }
  return { values: values as FlagValues<T>, positionals };
}

/**
 * The two-site form of `mysql_prm config` (`--site`): booth.conf, and each site's configuration,
 * parsed and rendered by the one-site code (config_gen.ts) with booth's part added. Pure.
 *
 * @example
 * ```ts
 * import { generateTwoSiteConfig, parseTwoSiteArgs } from "./config_sites.ts";
 * const out = generateTwoSiteConfig(parseTwoSiteArgs([
 *   "--site", "east=10.0.1.90/24", "--site", "west=10.0.2.90/24", "--arbitrator", "10.0.3.15",
 *   "--node", "db1=10.0.1.11@east", "--node", "db2=10.0.1.12@east",
 *   "--node", "db3=10.0.2.13@west", "--node", "db4=10.0.2.14@west",
 *   "--writer-vip", "10.0.1.100/24@east", "--writer-vip", "10.0.2.100/24@west",
 *   "--credentials-file", "/etc/mysql/prm.cnf",
 * ]));
 * console.log(out.booth, out.sites[0].crm);
 * ```
 *
 * @module
 */
import {
  type BoothConfig,
  boothConfigProblems,
  isTicketName,
  renderBoothConfig,
} from "./booth_conf.ts";
import {
  canonicalAddress,
  checkValue,
  CONFIG_FLAGS,
  ConfigError,
  type ConfigOptions,
  generateConfig,
  type GeneratedConfig,
  NAME_PATTERN,
  parseConfigArgs,
  parseVip,
} from "./config_gen.ts";
import { PARAM_DEFAULTS } from "./params.ts";

/** Everything the two-site form needs; {@linkcode parseTwoSiteArgs} builds it from flags. */
export interface TwoSiteOptions {
  /** Each site's cluster configuration, in `--site` order. */
  sites: ConfigOptions[];
  /** booth.conf, identical everywhere. */
  booth: BoothConfig;
  /** Which part to print: everything, booth.conf only, or one site only. */
  only?: string;
  format: "crm" | "pcs" | "both";
}

/** Flags of the two-site form only, with whether they take a value. */
const TWO_SITE_FLAGS: Record<string, boolean> = {
  "--site": true,
  "--arbitrator": true,
  "--ticket": true,
  "--ticket-expire": true,
  "--acquire-after": true,
  "--booth-timeout": true,
  "--booth-retries": true,
  "--booth-authfile": true,
  "--booth-config": true,
  "--only": true,
};

/** Flags whose value names its site with an `@SITE` suffix in the two-site form. */
const PER_SITE_FLAGS = ["--node", "--writer-vip", "--reader-vip"];

/** True when the flags ask for the two-site form (at least one `--site`). */
export function isTwoSite(args: string[]): boolean {
  return args.some((a) => a === "--site" || a.startsWith("--site="));
}

/** Flags as [name, value] pairs (`--flag value` and `--flag=value`), booleans with no value. */
function flagPairs(args: string[], takesValue: (flag: string) => boolean): [string, string?][] {
  const out: [string, string?][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    if (eq > 0) out.push([a.slice(0, eq), a.slice(eq + 1)]);
    else if (takesValue(a)) {
      if (i + 1 >= args.length) throw new ConfigError(`${a} needs a value`);
      out.push([a, args[++i]]);
    } else out.push([a]);
  }
  return out;
}

/** Flags of the one-site form that take a value (the rest are booleans). */
const VALUE_FLAGS = new Set(
  Object.entries(CONFIG_FLAGS).filter(([, o]) => o.type === "string").map(([k]) => `--${k}`),
);

function wholeSeconds(text: string, flag: string, min: number): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < min) {
    throw new ConfigError(`${flag} ${text}: expected whole seconds, at least ${min}`);
  }
  return Number(text);
}

/**
 * Parses the two-site form: `--site NAME=BOOTH_ADDRESS[/PREFIX]` twice, `--arbitrator ADDRESS`,
 * the per-site flags with an `@SITE` suffix (`--node db1=10.0.1.11@east`, `--writer-vip
 * 10.0.1.100/24@east`), the ticket and its timing, and every single-site flag, which applies to
 * both sites. Each site's options go through {@linkcode parseConfigArgs}, so they are checked
 * exactly as one site's.
 */
export function parseTwoSiteArgs(args: string[]): TwoSiteOptions {
  const pairs = flagPairs(args, (f) => VALUE_FLAGS.has(f) || TWO_SITE_FLAGS[f] === true);
  const geo = new Map<string, string[]>();
  const common: string[] = [];
  const perSite: [string, string][] = [];
  for (const [flag, value] of pairs) {
    if (TWO_SITE_FLAGS[flag] !== undefined) {
      geo.set(flag, [...(geo.get(flag) ?? []), value!]);
    } else if (PER_SITE_FLAGS.includes(flag)) perSite.push([flag, value!]);
    else common.push(...(value === undefined ? [flag] : [flag, value]));
  }
  const one = (flag: string, fallback: string): string => {
    const v = geo.get(flag) ?? [];
    if (v.length > 1) throw new ConfigError(`${flag} is given twice`);
    return v[0] ?? fallback;
  };
  const siteTexts = geo.get("--site") ?? [];
  if (siteTexts.length !== 2) {
    throw new ConfigError(
      `The two-site form needs exactly two --site NAME=BOOTH_ADDRESS flags (got ${siteTexts.length})`,
    );
  }
  const sites = siteTexts.map((text) => {
    const eq = text.indexOf("=");
    const name = text.slice(0, eq);
    if (eq < 1 || !NAME_PATTERN.test(name)) {
      throw new ConfigError(`--site ${text}: expected NAME=BOOTH_ADDRESS[/PREFIX]`);
    }
    return { name, boothAddress: parseVip(text.slice(eq + 1), "--site") };
  });
  if (sites[0].name === sites[1].name) throw new ConfigError("The two --site names must differ");
  const arbitrators = geo.get("--arbitrator") ?? [];
  if (arbitrators.length === 0) {
    throw new ConfigError(
      "--arbitrator ADDRESS is required: with two sites only, neither can tell a dead peer from a cut link",
    );
  }
  const ticket = one("--ticket", "ticket-mysql");
  if (!isTicketName(ticket)) throw new ConfigError(`--ticket ${ticket} is not a ticket name`);
  const boothConfig = one("--booth-config", PARAM_DEFAULTS.boothConfig);
  if (!boothConfig.startsWith("/")) {
    throw new ConfigError("--booth-config must be an absolute path");
  }
  checkValue(boothConfig, "--booth-config");
  const booth: BoothConfig = {
    port: 9929,
    sites: sites.map((s) => s.boothAddress.address),
    arbitrators,
    authfile: one("--booth-authfile", "/etc/booth/authkey"),
    tickets: [{
      name: ticket,
      expire: wholeSeconds(one("--ticket-expire", "60"), "--ticket-expire", 1),
      acquireAfter: wholeSeconds(one("--acquire-after", "10"), "--acquire-after", 0),
      timeout: wholeSeconds(one("--booth-timeout", "3"), "--booth-timeout", 1),
      retries: wholeSeconds(one("--booth-retries", "5"), "--booth-retries", 3),
    }],
  };
  const problems = boothConfigProblems(booth);
  if (problems.length > 0) throw new ConfigError(`Booth: ${problems.join("; ")}`);

  // Each site's flags: its own nodes and VIPs, fence parameters for its nodes, the rest shared.
  const siteOf = (flag: string, value: string): [string, string] => {
    const at = value.lastIndexOf("@");
    const site = at < 0 ? undefined : value.slice(at + 1);
    if (site === undefined || !sites.some((s) => s.name === site)) {
      throw new ConfigError(
        `${flag} ${value}: in the two-site form it ends with @SITE (${
          sites.map((s) => s.name).join(" or ")
        })`,
      );
    }
    return [site, value.slice(0, at)];
  };
  const nodeSite = new Map<string, string>();
  const routed = perSite.map(([flag, value]) => {
    const [site, rest] = siteOf(flag, value);
    if (flag === "--node") nodeSite.set(rest.slice(0, rest.indexOf("=")).toLowerCase(), site);
    return { site, flag, rest };
  });
  const names = [...nodeSite.keys()];
  if (
    new Set(names).size !== names.length ||
    routed.filter((r) => r.flag === "--node").length !== names.length
  ) {
    throw new ConfigError("Node names must differ across both sites");
  }
  const siteOptions = sites.map((site) => {
    const own = routed.filter((r) => r.site === site.name).flatMap((r) => [r.flag, r.rest]);
    const shared: string[] = [];
    for (let j = 0; j < common.length; j++) {
      const fenceNode = common[j] === "--fence-param" ? /^([^:=]+):/.exec(common[j + 1]) : null;
      if (fenceNode !== null && nodeSite.get(fenceNode[1].toLowerCase()) !== site.name) {
        j++;
        continue;
      }
      shared.push(common[j]);
    }
    let options: ConfigOptions;
    try {
      options = parseConfigArgs([...shared, ...own]);
    } catch (error) {
      if (error instanceof ConfigError) {
        throw new ConfigError(`site ${site.name}: ${error.message}`);
      }
      throw error;
    }
    return options;
  });
  siteOptions.forEach((options, i) => {
    const site = sites[i];
    const other = sites[1 - i];
    options.geo = {
      site: site.name,
      boothAddress: site.boothAddress,
      ticket,
      boothConfig,
      other: {
        site: other.name,
        address: other.boothAddress.address,
        nodes: siteOptions[1 - i].nodes,
      },
    };
  });
  const addresses = siteOptions.flatMap((o) => [
    ...o.nodes.map((n) => n.address),
    o.writerVip.address,
    ...o.readerVips.map((v) => v.address),
    o.geo!.boothAddress.address,
  ]).concat(arbitrators).map(canonicalAddress);
  if (new Set(addresses).size !== addresses.length) {
    throw new ConfigError(
      "Every node, VIP, booth and arbitrator address must differ across both sites",
    );
  }
  const only = geo.get("--only")?.[0];
  if (only !== undefined && only !== "booth" && !sites.some((s) => s.name === only)) {
    throw new ConfigError(`--only ${only}: expected booth or a site name`);
  }
  return { sites: siteOptions, booth, only, format: siteOptions[0].format };
}

/** The two-site form: booth.conf, and each site's configuration in both forms. */
export function generateTwoSiteConfig(
  options: TwoSiteOptions,
): { booth: string; sites: (GeneratedConfig & { site: string })[] } {
  return {
    booth: renderBoothConfig(options.booth),
    sites: options.sites.map((o) => ({ site: o.geo!.site, ...generateConfig(o) })),
  };
}

function rule(title: string): string {
  return `# ${"=".repeat(76)}\n# ${title}\n# ${"=".repeat(76)}\n`;
}

/** What the two-site form prints for the chosen part and format. */
export function twoSiteText(options: TwoSiteOptions): string {
  const out = generateTwoSiteConfig(options);
  const parts: string[] = [];
  const wants = (part: string) => options.only === undefined || options.only === part;
  if (wants("booth")) {
    parts.push(
      (options.only === undefined
        ? rule("booth.conf: the same file on every node of both sites and on the arbitrator")
        : "") + out.booth,
    );
  }
  for (const s of out.sites) {
    if (!wants(s.site)) continue;
    if (options.format !== "pcs") {
      parts.push(
        (options.only === undefined ? rule(`site ${s.site}, crm shell form`) : "") + s.crm,
      );
    }
    if (options.format !== "crm") {
      parts.push(
        (options.only === undefined
          ? rule(`site ${s.site}, pcs form: save the part below as a file and run it with sh`)
          : "") + s.pcs,
      );
    }
  }
  return parts.join("\n");
}

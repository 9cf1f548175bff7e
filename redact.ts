/**
 * Redaction of secrets in text that leaves the agent (log lines, exit reasons, errors). Removing
 * only the exact secret is not enough: a server error quotes what it could not parse from the
 * point of the error on (a syntax error inside a password quotes the password's tail), and a too
 * long value is quoted cut short (MariaDB's ER_WRONG_STRING_LENGTH shows its first 64
 * characters). So every run of text that also occurs inside a secret, from a few characters long,
 * is replaced.
 *
 * Pure: the Logger (ocf.ts) and mysql.ts call it.
 *
 * @module
 */

/** What replaces a redacted run. */
export const REDACTED = "***";

/**
 * Shortest run of a secret that is redacted. Runs of one to three characters are in every line of
 * ordinary text (any short word, any number), so redacting them would blank the logs; four keeps
 * lines readable while no quoted piece of a secret longer than three characters gets through.
 */
export const MIN_SECRET_PIECE = 4;

/** Options of {@link redactSecrets}. */
export interface RedactOptions {
  /** Shortest run of a secret replaced. Default {@link MIN_SECRET_PIECE}. */
  minPiece?: number;
}

/**
 * Returns `text` with every run of at least `minPiece` characters that occurs inside one of the
 * secrets replaced by `***` (overlapping and adjacent runs become one). A secret shorter than
 * `minPiece` is replaced where it occurs whole. Time is proportional to the text's length times
 * the secrets' lengths.
 *
 * @example
 * ```ts
 * redactSecrets("syntax error near 'and-SECRET-tail'", ["Tr0ub4dor'and-SECRET-tail"]);
 * // "syntax error near '***'"
 * ```
 */
export function redactSecrets(
  text: string,
  secrets: readonly string[],
  options: RedactOptions = {},
): string {
  const minPiece = Math.max(1, options.minPiece ?? MIN_SECRET_PIECE);
  const hidden = new Uint8Array(text.length);
  let any = false;
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    if (secret.length < minPiece) {
      for (let at = text.indexOf(secret); at >= 0; at = text.indexOf(secret, at + 1)) {
        hidden.fill(1, at, at + secret.length);
        any = true;
      }
      continue;
    }
    // run[j]: length of the longest common prefix of text[i..] and secret[j..], computed from
    // the end of the text backwards (next[] holds the values for i + 1).
    let next = new Uint32Array(secret.length + 1);
    let run = new Uint32Array(secret.length + 1);
    for (let i = text.length - 1; i >= 0; i--) {
      const c = text.charCodeAt(i);
      let longest = 0;
      for (let j = 0; j < secret.length; j++) {
        const n = secret.charCodeAt(j) === c ? next[j + 1] + 1 : 0;
        run[j] = n;
        if (n > longest) longest = n;
      }
      if (longest >= minPiece) {
        hidden.fill(1, i, i + longest);
        any = true;
      }
      [next, run] = [run, next];
    }
  }
  if (!any) return text;
  let out = "";
  for (let i = 0; i < text.length;) {
    if (hidden[i]) {
      out += REDACTED;
      while (i < text.length && hidden[i]) i++;
    } else {
      const start = i;
      while (i < text.length && !hidden[i]) i++;
      out += text.slice(start, i);
    }
  }
  return out;
}

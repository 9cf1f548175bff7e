/**
 * A small XML reader for what Pacemaker's tools print (`crm_mon --output-as=xml`, `cibadmin -Q`):
 * elements and attributes, entities decoded; text, comments and declarations skipped. Pure.
 * Pacemaker's output is untrusted input like any CIB value: callers bound its size before
 * parsing (cib.ts and child.ts bound every tool's output).
 *
 * @module
 */

/** An XML element. */
export interface XmlNode {
  /** Tag name. */
  name: string;
  /** Attributes, entities decoded. */
  attrs: Record<string, string>;
  /** Child elements. */
  children: XmlNode[];
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (e === "lt") return "<";
    if (e === "gt") return ">";
    if (e === "amp") return "&";
    if (e === "quot") return '"';
    if (e === "apos") return "'";
    const code = e.startsWith("#x") ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : "\ufffd";
  });
}

/**
 * Parses an XML document into elements (text, comments and declarations are skipped).
 *
 * @example
 * ```ts
 * const doc = parseXml(`<a x="1"><b/></a>`);
 * console.assert(doc.children[0].attrs.x === "1");
 * ```
 */
export function parseXml(text: string): XmlNode {
  const root: XmlNode = { name: "#document", attrs: {}, children: [] };
  const stack: XmlNode[] = [root];
  const tag = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  const attr = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  const cleaned = text.replace(/<!--[\s\S]*?-->/g, "").replace(/<\?[\s\S]*?\?>/g, "")
    .replace(/<!DOCTYPE[^>[]*(\[[\s\S]*?\])?\s*>/g, "");
  for (const m of cleaned.matchAll(tag)) {
    const [, closing, name, attrText, selfClosing] = m;
    if (closing) {
      while (stack.length > 1 && stack.pop()!.name !== name) {
        // Tolerate a missing end tag.
      }
      continue;
    }
    const el: XmlNode = { name, attrs: {}, children: [] };
    for (const a of attrText.matchAll(attr)) el.attrs[a[1]] = decodeEntities(a[2] ?? a[3] ?? "");
    stack[stack.length - 1].children.push(el);
    if (!selfClosing) stack.push(el);
  }
  return root;
}

/**
 * Every descendant element named `name`, in document order.
 *
 * @example
 * ```ts
 * findAll(parseXml("<a><b/><c><b/></c></a>"), "b").length; // 2
 * ```
 */
export function findAll(el: XmlNode, name: string): XmlNode[] {
  const out: XmlNode[] = [];
  const walk = (e: XmlNode) => {
    for (const c of e.children) {
      if (c.name === name) out.push(c);
      walk(c);
    }
  };
  walk(el);
  return out;
}

/** The name → value pairs of the `nvpair` children of `el` (a meta or instance attribute set). */
export function nvpairs(el: XmlNode | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const nv of el?.children ?? []) {
    if (nv.name === "nvpair" && nv.attrs.name !== undefined) {
      out[nv.attrs.name] = nv.attrs.value ?? "";
    }
  }
  return out;
}

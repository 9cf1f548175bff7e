/**
 * A tiny XML reader for the output of Pacemaker tools (crm_mon, cibadmin), and attribute escaping.
 *
 * @module
 */

/** One XML element. */
export interface XmlElement {
  /** Tag name. */
  name: string;
  /** Attributes, unescaped. */
  attrs: Record<string, string>;
  /** Child elements (text content is dropped). */
  children: XmlElement[];
}

/** Escapes a value for an XML attribute. */
export function xmlEscape(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&apos;");
}

function unescape(s: string): string {
  return s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'").replaceAll("&amp;", "&");
}

/** Parses XML text into an element tree (enough for tool output; no DTDs, no CDATA). */
export function parseXml(text: string): XmlElement {
  const root: XmlElement = { name: "#document", attrs: {}, children: [] };
  const stack: XmlElement[] = [root];
  const tag = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  const attr = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  for (const m of text.replace(/<!--[\s\S]*?-->/g, "").matchAll(tag)) {
    const [, closing, name, attrText, selfClosing] = m;
    if (closing) {
      while (stack.length > 1 && stack.pop()!.name !== name) {
        // Unbalanced input: pop until the matching element.
      }
      continue;
    }
    const el: XmlElement = { name, attrs: {}, children: [] };
    for (const a of attrText.matchAll(attr)) el.attrs[a[1]] = unescape(a[2] ?? a[3] ?? "");
    stack[stack.length - 1].children.push(el);
    if (!selfClosing) stack.push(el);
  }
  return root;
}

/** All descendants (depth first) with the given tag name. */
export function findAll(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const c of el.children) {
    if (c.name === name) out.push(c);
    out.push(...findAll(c, name));
  }
  return out;
}

// Building DOM and SVG elements.  Every string from the server goes in as a text
// node or an attribute value: nothing here parses HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** An HTML element: h("span", {class: "badge"}, "net"). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  return build(el, null, children);
}

/** The namespace as people write it: net:[4026532008]. */
export function nsName(type, ino) {
  return `${type}:[${ino}]`;
}

/** A container label as nsctl ls prints it (docker:web, podman:3f4e5a6b7c8d, pod:accp-pod). */
export function containerLabel(c) {
  if (!c) return "";
  if (c.id === null || c.id === undefined) {
    if (c.pod_name) return `pod:${c.pod_namespace ? `${c.pod_namespace}/` : ""}${c.pod_name}`;
    return `${c.engine}:pod-${(c.pod || "").slice(0, 8)}`;
  }
  return `${c.engine}:${c.name || c.id.slice(0, 12)}`;
}

/** What a details pane says of a container: its label, then image, Compose service, pod. */
export function containerText(c) {
  if (!c) return "";
  const extra = [];
  if (c.image) extra.push(`image ${c.image}`);
  if (c.project || c.service) extra.push(`compose ${c.project || "-"}/${c.service || "-"}`);
  if (c.id && c.pod_name) extra.push(`pod ${c.pod_namespace ? `${c.pod_namespace}/` : ""}${c.pod_name}`);
  return extra.length ? `${containerLabel(c)} (${extra.join(", ")})` : containerLabel(c);
}

/** A type badge. */
export function badge(type) {
  return h("span", { class: `badge t-${type}` }, type);
}

/** Small grey tags (held-by reasons, marks). */
export function tag(text, cls = "") {
  return h("span", { class: `tag ${cls}`.trim() }, text);
}

// Small DOM helpers: elements are built with createElement and text nodes only (no innerHTML),
// so that nothing from the server is ever parsed as HTML.

/**
 * Creates an element.
 * @param {string} tag Tag name, optionally with classes: `"button.btn.btn-sm"`.
 * @param {Object<string, any>|null} [attrs] Attributes. `class` and `text` are special; `on` is an
 *   object of event listeners; boolean `true` sets an empty attribute, `false`/null/undefined skip it.
 * @param {...(Node|string|number|null|undefined|Array)} children Children (strings become text).
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === false || value === null || value === undefined) continue;
      if (key === 'class') el.className = (el.className ? el.className + ' ' : '') + value;
      else if (key === 'text') el.textContent = String(value);
      else if (key === 'on') for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
      else if (key === 'value') el.value = value;
      else if (key === 'checked' || key === 'disabled' || key === 'selected') el[key] = Boolean(value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * Appends children (strings become text nodes; arrays are flattened; null is skipped).
 * @param {Node} parent
 * @param {Array} children
 * @returns {Node} the parent
 */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/**
 * Replaces an element's children.
 * @param {Node} el
 * @param {...any} children
 * @returns {Node}
 */
export function replace(el, ...children) {
  el.textContent = '';
  return append(el, children);
}

/**
 * Creates an SVG element.
 * @param {string} tag
 * @param {Object<string, any>} [attrs]
 * @param {...Node} children
 * @returns {SVGElement}
 */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const child of children) if (child) el.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  return el;
}

/**
 * A labelled form field: `<div class="field"><label>..</label>control<small>help</small></div>`.
 * @param {string} label
 * @param {HTMLElement} control The input; it gets an id if it has none.
 * @param {string} [help]
 * @returns {HTMLElement}
 */
let fieldSeq = 0;
export function field(label, control, help) {
  if (!control.id) control.id = 'f' + ++fieldSeq;
  const helpEl = help ? h('small.help', { id: control.id + '-help' }, help) : null;
  if (helpEl) control.setAttribute('aria-describedby', helpEl.id);
  return h('div.field', null, h('label', { for: control.id }, label), control, helpEl);
}

/**
 * Copies text to the clipboard (with a fallback for non-secure origins).
 * @param {string} text
 * @returns {Promise<boolean>} whether it worked
 */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { class: 'offscreen', 'aria-hidden': 'true' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

/**
 * Offers text as a file download.
 * @param {string} filename
 * @param {string} text
 * @param {string} [type]
 */
export function download(filename, text, type = 'text/plain') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * Tabs: buttons with role=tab switching panels (only one shown).
 * @param {Array<{id: string, label: string, panel: HTMLElement}>} tabs
 * @param {(id: string) => void} [onChange]
 * @returns {{el: HTMLElement, select: (id: string) => void}}
 */
export function tabs(tabs, onChange) {
  const bar = h('div.tabs', { role: 'tablist' });
  const wrap = h('div', null, bar);
  const select = (id) => {
    for (const t of tabs) {
      const on = t.id === id;
      t.button.setAttribute('aria-selected', String(on));
      t.button.tabIndex = on ? 0 : -1;
      t.panel.hidden = !on;
    }
    if (onChange) onChange(id);
  };
  for (const t of tabs) {
    t.button = h('button', { type: 'button', role: 'tab', 'data-test': 'tab-' + t.id, on: { click: () => select(t.id) } }, t.label);
    t.panel.setAttribute('role', 'tabpanel');
    bar.appendChild(t.button);
    wrap.appendChild(t.panel);
  }
  bar.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const i = tabs.findIndex((t) => t.button === document.activeElement);
    if (i < 0) return;
    const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    select(next.id);
    next.button.focus();
  });
  select(tabs[0].id);
  return { el: wrap, select };
}

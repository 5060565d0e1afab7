// The visual diff: the left and right module trees side by side, lines between paired modules.
//
// Data comes from inspector.diff_tree.DiffTree.to_json() (column arrays, rows in preorder so a
// row's subtree is rows (i, end[i])) plus what the page adds (titles, colours, selection, timing).
// Only the rows inside the scrolled window are in the DOM (virtualised), so a 2,000-module model
// draws as fast as a small one. The two trees share one grid: paired rows sit on the same line and
// rows the other side lacks face a gap, the way a side-by-side text diff lays out its lines.
// Expansion state lives here, per tree signature, so a rerun of the page keeps what was open.

const ROW = 24;        // px per grid line (matches --dt-row)
const GUTTER = 150;    // px between the two trees, where the links are drawn
const BUFFER = 10;     // lines drawn beyond each edge of the scrolled window
const MAX_HEIGHT = 600;

const memory = window.__flaxInspectorDiffTree || (window.__flaxInspectorDiffTree = new Map());

export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const started = performance.now();
  let root = parentElement.querySelector(".dt");
  if (!root) {
    root = document.createElement("div");
    root.className = "dt";
    parentElement.appendChild(root);
  }
  if (root.__view) root.__view.detach();
  root.__view = new TreeView(root, data, setTriggerValue, started);
}

class Side {
  constructor(name, columns) {
    Object.assign(this, columns);
    this.name = name;
    this.n = columns.label.length;
  }

  hasChildren(i) { return this.end[i] > i + 1; }

  path(i) {
    const parts = [];
    for (let k = i; k > 0; k = this.parent[k]) parts.push(this.label[k]);
    return parts.reverse().join("/");
  }
}

class TreeView {
  constructor(root, data, setTriggerValue, started) {
    this.root = root;
    this.data = data;
    this.send = setTriggerValue;
    this.started = started;
    const tree = data.tree;
    this.statuses = tree.statuses;
    // Statuses come ranked worst first: real mismatches, then one side only, then the rest.
    this.onlyRank = this.statuses.indexOf("left_only");
    this.changedRank = this.statuses.indexOf("transformed");
    this.mutedRank = this.statuses.indexOf("counter_only");
    this.sides = { left: new Side("left", tree.left), right: new Side("right", tree.right) };
    this.links = tree.links;
    this.key = tree.signature + "|" + (data.instance || "");
    let state = memory.get(this.key);
    if (!state) {
      state = { expanded: { left: new Set(), right: new Set() }, painted: false, scroll: 0 };
      memory.set(this.key, state);
      this.state = state;
      this.overview();
    }
    this.state = state;
    this.selected = data.selected || null;
    this.highlight = { left: new Set(data.highlight?.left || []), right: new Set(data.highlight?.right || []) };
    if (data.reveal) this.reveal();
    this.skeleton();
    this.layout();
    this.draw();
    this.recordPaint();
  }

  detach() { this.scroller?.removeEventListener("scroll", this.onScroll); }

  // ---- expansion -------------------------------------------------------------------------------

  overview() {
    const depth = this.data.open_depth ?? 1;
    for (const side of Object.values(this.sides)) {
      const open = this.state.expanded[side.name];
      open.clear();
      for (let i = 0; i < side.n; i++) if (side.depth[i] < depth && side.hasChildren(i)) open.add(i);
    }
    this.revealPartners(["left", "right"].flatMap((s) => this.visible(s).map((i) => [s, i])));
  }

  visible(name) {
    const side = this.sides[name], open = this.state.expanded[name], out = [];
    for (let i = 0; i < side.n; ) {
      out.push(i);
      i = open.has(i) ? i + 1 : side.end[i];
    }
    return out;
  }

  showRow(name, i) {  // open every ancestor of row i
    const side = this.sides[name], open = this.state.expanded[name], opened = [];
    for (let p = side.parent[i]; p >= 0; p = side.parent[p]) {
      if (!open.has(p)) { open.add(p); opened.push(p); }
    }
    return opened;
  }

  // Rows that became visible should see their partners: open the other side down to them.
  revealPartners(rows) {
    let queue = rows;
    for (let round = 0; queue.length && round < 64; round++) {
      const next = [];
      for (const [name, i] of queue) {
        const other = name === "left" ? "right" : "left";
        const partner = this.sides[name].partner[i];
        if (partner < 0) continue;
        for (const p of this.showRow(other, partner)) {
          const side = this.sides[other];
          for (let c = p + 1; c < side.end[p]; c = side.end[c]) next.push([other, c]);
        }
      }
      queue = next;
    }
  }

  // Open row i and its partner, then reveal the partners of every row that came into view.
  open(name, i) {
    const other = name === "left" ? "right" : "left";
    const side = this.sides[name], partner = side.partner[i];
    const appeared = [];
    if (side.hasChildren(i)) this.state.expanded[name].add(i);
    for (let c = i + 1; c < side.end[i]; c = side.end[c]) appeared.push([name, c]);
    if (partner >= 0) {
      this.showRow(other, partner);
      const mirror = this.sides[other];
      if (mirror.hasChildren(partner)) this.state.expanded[other].add(partner);
      for (let c = partner + 1; c < mirror.end[partner]; c = mirror.end[c]) appeared.push([other, c]);
    }
    return appeared;
  }

  toggle(name, i) {
    const open = this.state.expanded[name];
    const other = name === "left" ? "right" : "left";
    const partner = this.sides[name].partner[i];
    if (open.has(i)) {
      open.delete(i);
      if (partner >= 0) this.state.expanded[other].delete(partner);
    } else {
      this.revealPartners(this.open(name, i));
    }
    this.layout();
    this.draw();
  }

  expandMismatches() {
    const appeared = [];
    for (const side of Object.values(this.sides)) {
      for (let i = 0; i < side.n; i++) {
        if (side.mismatches[i] > 0 && side.hasChildren(i)) appeared.push(...this.open(side.name, i));
      }
    }
    this.revealPartners(appeared);
    this.layout();
    this.draw();
    this.scrollToFirstMismatch();
  }

  expandAll() {
    for (const side of Object.values(this.sides)) {
      for (let i = 0; i < side.n; i++) if (side.hasChildren(i)) this.state.expanded[side.name].add(i);
    }
    this.layout();
    this.draw();
  }

  reveal() {  // a variable chosen in the table: open down to its modules
    for (const name of ["left", "right"]) for (const i of this.highlight[name]) this.showRow(name, i);
    this.pendingScroll = true;
  }

  // ---- layout: one grid for both trees ---------------------------------------------------------

  layout() {
    const L = this.visible("left"), R = this.visible("right");
    const rep = { left: this.representatives("left"), right: this.representatives("right") };
    const posL = new Map(L.map((r, k) => [r, k])), posR = new Map(R.map((r, k) => [r, k]));
    const lifted = new Map();
    const links = this.links;
    for (let k = 0; k < links.left.length; k++) {
      const a = rep.left[links.left[k]], b = rep.right[links.right[k]];
      const id = a * 1048576 + b;
      let link = lifted.get(id);
      if (!link) {
        link = { a, b, status: links.status[k], kinds: new Set(), pairs: 0, nestedPairs: 0, transform: "", nested: true };
        lifted.set(id, link);
      }
      link.status = Math.min(link.status, links.status[k]);
      if (links.nested[k]) {
        link.nestedPairs = Math.max(link.nestedPairs, links.pairs[k]);
      } else {
        link.nested = false;
        link.kinds.add(links.kind[k]);
        link.pairs += links.pairs[k];
      }
      if (!link.transform && links.transform[k]) link.transform = links.transform[k];
    }
    this.lifted = [...lifted.values()];
    // Anchors: the longest chain of links that keeps both trees in order (LIS on the right index).
    const pairs = this.lifted.map((l) => [posL.get(l.a), posR.get(l.b)])
      .sort((x, y) => x[0] - y[0] || y[1] - x[1]);
    const anchors = longestIncreasing(pairs);
    const lineL = new Int32Array(L.length), lineR = new Int32Array(R.length);
    let line = 0, i = 0, j = 0;
    for (const [ai, aj] of [...anchors, [L.length, R.length]]) {
      const gap = Math.max(ai - i, aj - j);
      for (let k = 0; i < ai; i++, k++) lineL[i] = line + k;
      for (let k = 0; j < aj; j++, k++) lineR[j] = line + k;
      line += gap;
      if (ai < L.length) { lineL[i++] = line; lineR[j++] = line; line++; }
    }
    this.lines = line;
    this.grid = { left: new Int32Array(line).fill(-1), right: new Int32Array(line).fill(-1) };
    L.forEach((r, k) => { this.grid.left[lineL[k]] = r; });
    R.forEach((r, k) => { this.grid.right[lineR[k]] = r; });
    this.lineOf = { left: new Map(L.map((r, k) => [r, lineL[k]])), right: new Map(R.map((r, k) => [r, lineR[k]])) };
    this.rep = rep;
  }

  representatives(name) {  // each row's visible self or the collapsed ancestor that hides it
    const side = this.sides[name], open = this.state.expanded[name];
    const rep = new Int32Array(side.n);
    for (let i = 1; i < side.n; i++) {
      const p = side.parent[i];
      rep[i] = rep[p] === p && open.has(p) ? i : rep[p];
    }
    return rep;
  }

  // ---- drawing ---------------------------------------------------------------------------------

  skeleton() {
    const d = this.data;
    this.root.style.setProperty("--dt-gutter", GUTTER + "px");
    this.root.innerHTML = `
      <div class="dt-bar">
        <button data-act="mismatches" title="Open every module with a mismatch below it">Expand all mismatches</button>
        <button data-act="overview" title="Back to the opening view">Overview</button>
        <button data-act="all">Expand all</button>
        <div class="dt-legend"></div>
      </div>
      <div class="dt-head"><div class="l"></div><div></div><div class="r"></div></div>
      <div class="dt-scroll"><div class="dt-canvas">
        <div class="dt-col left"></div><svg class="dt-links"></svg><div class="dt-col right"></div>
      </div></div>
      <div class="dt-foot"></div>`;
    this.root.querySelector(".dt-head .l").textContent = d.titles?.left || "left";
    this.root.querySelector(".dt-head .r").textContent = d.titles?.right || "right";
    const present = new Set([...this.sides.left.status, ...this.sides.right.status]);
    this.root.querySelector(".dt-legend").innerHTML = [...present].sort((a, b) => a - b)
      .map((s) => `<span style="--c:${this.color(s)}">${escape(this.statuses[s].replace("_", " "))}</span>`).join("");
    this.scroller = this.root.querySelector(".dt-scroll");
    this.canvas = this.root.querySelector(".dt-canvas");
    this.cols = { left: this.root.querySelector(".dt-col.left"), right: this.root.querySelector(".dt-col.right") };
    this.svg = this.root.querySelector(".dt-links");
    this.onScroll = () => {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => { this.frame = 0; this.state.scroll = this.scroller.scrollTop; this.draw(); });
    };
    this.scroller.addEventListener("scroll", this.onScroll, { passive: true });
    this.root.querySelector(".dt-bar").onclick = (e) => {
      const act = e.target.closest("button")?.dataset.act;
      if (act === "mismatches") this.expandMismatches();
      else if (act === "overview") { this.overview(); this.layout(); this.scroller.scrollTop = 0; this.draw(); }
      else if (act === "all") this.expandAll();
    };
    this.canvas.onclick = (e) => {
      const row = e.target.closest(".row");
      if (!row) return;
      const name = row.dataset.side, i = Number(row.dataset.i);
      if (e.target.closest(".tw") && this.sides[name].hasChildren(i)) { this.toggle(name, i); return; }
      const same = this.selected && this.selected.side === name && this.selected.index === i;
      this.send("select", same ? { side: name, index: -1, path: "", signature: this.data.tree.signature }
        : { side: name, index: i, path: this.sides[name].path(i), signature: this.data.tree.signature });
    };
  }

  draw() {
    const height = Math.min(this.lines * ROW + 2, MAX_HEIGHT);
    this.scroller.style.height = height + "px";
    this.canvas.style.height = this.lines * ROW + "px";
    if (this.pendingScroll) { this.pendingScroll = false; this.scrollToHighlight(); }
    else if (this.scroller.scrollTop !== this.state.scroll) this.scroller.scrollTop = this.state.scroll;
    const top = this.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - BUFFER);
    const last = Math.min(this.lines - 1, Math.ceil((top + height) / ROW) + BUFFER);
    for (const name of ["left", "right"]) {
      const html = [];
      for (let g = first; g <= last; g++) {
        const r = this.grid[name][g];
        if (r >= 0) html.push(this.rowHtml(name, r, g));
      }
      this.cols[name].innerHTML = html.join("");
    }
    this.drawLinks(first, last);
    const shown = this.visibleCount();
    this.root.querySelector(".dt-foot").textContent =
      `${fmt(this.sides.left.n - 1)} modules left, ${fmt(this.sides.right.n - 1)} right · ` +
      `${fmt(shown.left)} + ${fmt(shown.right)} rows open · click a module to filter the table ` +
      `(again to show all); › opens it`;
    this.root.dataset.visibleLeft = shown.left;
    this.root.dataset.visibleRight = shown.right;
    this.root.dataset.signature = this.data.tree.signature;
  }

  visibleCount() {
    let left = 0, right = 0;
    for (let g = 0; g < this.lines; g++) { left += this.grid.left[g] >= 0; right += this.grid.right[g] >= 0; }
    return { left, right };
  }

  rowHtml(name, i, line) {
    const s = this.sides[name];
    const status = s.status[i];
    const open = this.state.expanded[name].has(i);
    const classes = ["row"];
    const only = s.pairs[i] === 0 && status >= this.onlyRank && status < this.changedRank;
    if (status >= this.mutedRank) classes.push("muted");
    else if (s.pairs[i] === 0) classes.push("unpaired");
    if (this.selected && this.selected.side === name && this.selected.index === i) classes.push("sel");
    if (this.highlight[name].has(i)) classes.push("hl");
    else if (!open && this.hidesHighlight(name, i)) classes.push("hl-inside");
    const indent = 4 + s.depth[i] * 14;
    const twisty = s.hasChildren(i) ? "›" : "";
    const cls = s.cls[i] ? `<span class="cls${s.guessed[i] ? " guess" : ""}">${escape(s.cls[i])}</span>` : "";
    const bad = s.mismatches[i] > 0 ? `<span class="bad" title="${s.mismatches[i]} mismatching variable(s) below">${fmt(s.mismatches[i])} ✗</span>` : "";
    const info = s.info[i] > 0 ? `<span class="inf" title="${s.info[i]} pair(s) below carry notes that are not mismatches">i</span>` : "";
    const onlyTag = only ? `<span class="only">${name === "left" ? "left only" : "right only"}</span>` : "";
    const title = `${s.path(i) || "(model)"}${s.cls[i] ? " · " + s.cls[i] + (s.guessed[i] ? " (from Linen's automatic name)" : "") : ""}\n` +
      `${fmt(s.variables[i])} variable(s), ${fmt(s.parameters[i])} parameters\nworst below: ${this.statuses[status]}` +
      (s.pairs[i] === 0 ? "\nno variable below has a counterpart on the other side" : "");
    return `<div class="${classes.join(" ")}" data-side="${name}" data-i="${i}" data-path="${escape(s.path(i))}" ` +
      `style="top:${line * ROW}px;padding-left:${indent}px;--c:${this.color(status)}" title="${escape(title)}">` +
      `<span class="tw${open ? " open" : ""}">${twisty}</span><span class="nm">${escape(s.label[i])}</span>${cls}${onlyTag}${info}${bad}` +
      `<span class="ct">${fmt(s.variables[i])} var${s.variables[i] === 1 ? "" : "s"} · ${fmtShort(s.parameters[i])}</span></div>`;
  }

  hidesHighlight(name, i) {
    for (const h of this.highlight[name]) if (h > i && h < this.sides[name].end[i]) return true;
    return false;
  }

  drawLinks(first, last) {
    const parts = [];
    const w = GUTTER;
    for (const link of this.lifted) {
      const y1 = this.lineOf.left.get(link.a), y2 = this.lineOf.right.get(link.b);
      if (Math.max(y1, y2) < first || Math.min(y1, y2) > last) continue;
      const a = y1 * ROW + ROW / 2, b = y2 * ROW + ROW / 2;
      const cls = [];
      if (link.status < this.onlyRank) cls.push("bad");
      if (link.status >= this.mutedRank) cls.push("muted");
      if (link.transform || link.kinds.has("join") || link.kinds.has("split")) cls.push("transform");
      if (link.nested) cls.push("nested");
      if (this.highlight.left.has(link.a) || this.highlight.right.has(link.b)) cls.push("hl");
      const kind = link.kinds.has("join") ? "join" : link.kinds.has("split") ? "split" : "";
      const title = `${this.sides.left.path(link.a) || "(model)"} → ${this.sides.right.path(link.b) || "(model)"}\n` +
        `${fmt(link.nested ? link.nestedPairs : link.pairs)} pair(s)${link.nested ? " further down" : ""}, ` +
        `worst ${this.statuses[link.status]}` + (kind ? `\n${kind}` : "") +
        (link.transform ? `\n${link.transform}` : "");
      parts.push(`<path class="${cls.join(" ")}" style="--c:${this.color(link.status)}" ` +
        `d="M0 ${a} C${w / 2} ${a}, ${w / 2} ${b}, ${w} ${b}"><title>${escape(title)}</title></path>`);
      if (kind) {
        const x = kind === "join" ? w - 30 : 4, y = (kind === "join" ? b : a) - 4;
        parts.push(`<text x="${x}" y="${y}" style="--c:${this.color(link.status)}">${kind}</text>`);
      }
    }
    this.svg.setAttribute("height", this.lines * ROW);
    this.svg.innerHTML = parts.join("");
  }

  scrollToHighlight() {
    let best = Infinity;
    for (const name of ["left", "right"]) {
      for (const i of this.highlight[name]) {
        const line = this.lineOf[name].get(this.rep[name][i]);
        if (line !== undefined) best = Math.min(best, line);
      }
    }
    if (best < Infinity) this.scrollToLine(best);
  }

  scrollToFirstMismatch() {
    let best = Infinity;
    for (const name of ["left", "right"]) {
      const s = this.sides[name];
      for (let i = 1; i < s.n; i++) {
        if (s.mismatches[i] > 0 && !s.hasChildren(i)) {
          const line = this.lineOf[name].get(this.rep[name][i]);
          if (line !== undefined) best = Math.min(best, line);
        }
      }
    }
    if (best < Infinity) { this.scrollToLine(best); this.draw(); }
  }

  scrollToLine(line) {
    const height = Math.min(this.lines * ROW + 2, MAX_HEIGHT);
    const top = this.scroller.scrollTop;
    if (line * ROW < top || (line + 1) * ROW > top + height) {
      this.scroller.scrollTop = Math.max(0, line * ROW - height / 3);
    }
    this.state.scroll = this.scroller.scrollTop;
  }

  color(status) { return this.data.colors[status] || "#9e9e9e"; }

  recordPaint() {
    if (this.state.painted) return;
    this.state.painted = true;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const now = performance.now();
      this.root.dataset.firstPaint = now.toFixed(1);
      this.root.dataset.renderMs = (now - this.started).toFixed(1);
      // Both clocks are the machine's: the diff was ready at ready_at, the data left Python at sent_at.
      if (this.data.ready_at) this.root.dataset.sinceDiffMs = String(Date.now() - this.data.ready_at);
      if (this.data.sent_at) this.root.dataset.sinceSentMs = String(Date.now() - this.data.sent_at);
      this.root.dataset.paintSignature = this.data.tree.signature;
    }));
  }
}

// Longest chain of [i, j] pairs (sorted by i, then j descending) with j strictly increasing.
function longestIncreasing(pairs) {
  const tails = [], tailIndex = [], previous = new Int32Array(pairs.length).fill(-1);
  pairs.forEach(([, j], k) => {
    let lo = 0, hi = tails.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (tails[mid] < j) lo = mid + 1; else hi = mid; }
    tails[lo] = j;
    tailIndex[lo] = k;
    previous[k] = lo > 0 ? tailIndex[lo - 1] : -1;
  });
  const out = [];
  for (let k = tails.length ? tailIndex[tails.length - 1] : -1; k >= 0; k = previous[k]) out.push(pairs[k]);
  return out.reverse();
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function fmt(n) { return Number(n).toLocaleString("en-US"); }

function fmtShort(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "B";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return fmt(n);
}

// Drives headless Chromium over the DevTools protocol for
// test/integration/report_browser.sh: opens cgprof's HTML reports, checks
// the drawn frames and widths against expected numbers, switches views,
// zooms, searches, hides, inspects, compares, saves screenshots and times
// the first render of a 100 000-node profile. No npm packages: a minimal
// WebSocket client (RFC 6455, client side) is built on node:http.
//
// node report_browser.js CONFIG.json   (keys: see main())
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const crypto = require('crypto');
const { spawn } = require('child_process');

function die(msg) {
  console.error('FAIL (report_browser): ' + msg);
  process.exit(1);
}
function note(msg) { console.log('   ' + msg); }

// ---------------------------------------------------------------- websocket
function wsConnect(url) {
  return new Promise(function (resolve, reject) {
    const u = new URL(url);
    const key = crypto.randomBytes(16).toString('base64');
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key },
    });
    req.on('upgrade', function (res, sock, head) {
      const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (res.headers['sec-websocket-accept'] !== want) return reject(new Error('bad websocket accept key'));
      sock.setNoDelay(true);
      const ws = { onmessage: null, onclose: null, sock: sock };
      let buf = head && head.length ? Buffer.from(head) : Buffer.alloc(0), frags = [];
      sock.on('data', function (d) {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        for (;;) {
          if (buf.length < 2) return;
          const fin = buf[0] & 0x80, op = buf[0] & 0x0f;
          let len = buf[1] & 0x7f, off = 2;
          if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
          else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
          if (buf[1] & 0x80) off += 4; // servers do not mask; tolerate it anyway
          if (buf.length < off + len) return;
          const payload = buf.subarray(off, off + len);
          buf = buf.subarray(off + len);
          if (op === 0x8) { sock.end(); return; }
          if (op === 0x9) { send(0xA, payload); continue; }
          if (op === 0x1 || op === 0x2 || op === 0x0) {
            frags.push(Buffer.from(payload));
            if (fin) { const m = Buffer.concat(frags).toString('utf8'); frags = []; if (ws.onmessage) ws.onmessage(m); }
          }
        }
      });
      sock.on('close', function () { if (ws.onclose) ws.onclose(); });
      function send(op, data) {
        const len = data.length, mask = crypto.randomBytes(4);
        let hdr;
        if (len < 126) { hdr = Buffer.alloc(2); hdr[1] = 0x80 | len; }
        else if (len < 65536) { hdr = Buffer.alloc(4); hdr[1] = 0x80 | 126; hdr.writeUInt16BE(len, 2); }
        else { hdr = Buffer.alloc(10); hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(len), 2); }
        hdr[0] = 0x80 | op;
        const body = Buffer.alloc(len);
        for (let i = 0; i < len; i++) body[i] = data[i] ^ mask[i & 3];
        sock.write(Buffer.concat([hdr, mask, body]));
      }
      ws.send = function (text) { send(0x1, Buffer.from(text, 'utf8')); };
      ws.close = function () { try { send(0x8, Buffer.alloc(0)); } catch (e) { /* closing anyway */ } sock.end(); };
      resolve(ws);
    });
    req.on('response', function (res) { reject(new Error('no websocket upgrade: HTTP ' + res.statusCode)); });
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------- CDP
function Cdp(ws) {
  this.ws = ws; this.id = 0; this.pending = new Map(); this.listeners = [];
  const self = this;
  ws.onmessage = function (text) {
    const m = JSON.parse(text);
    if (m.id !== undefined && self.pending.has(m.id)) {
      const p = self.pending.get(m.id); self.pending.delete(m.id);
      if (m.error) p.reject(new Error(p.method + ': ' + JSON.stringify(m.error))); else p.resolve(m.result);
    } else if (m.method) {
      for (const l of self.listeners) l(m);
    }
  };
  ws.onclose = function () { for (const p of self.pending.values()) p.reject(new Error('browser connection closed')); };
}
Cdp.prototype.send = function (method, params, sessionId, timeoutMs) {
  const id = ++this.id, self = this;
  const msg = { id: id, method: method, params: params || {} };
  if (sessionId) msg.sessionId = sessionId;
  return new Promise(function (resolve, reject) {
    const timer = setTimeout(function () { self.pending.delete(id); reject(new Error(method + ' timed out')); }, timeoutMs || 20000);
    self.pending.set(id, { method: method, resolve: function (r) { clearTimeout(timer); resolve(r); },
                           reject: function (e) { clearTimeout(timer); reject(e); } });
    self.ws.send(JSON.stringify(msg));
  });
};

function launch(chromium, userDir) {
  return new Promise(function (resolve, reject) {
    const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-default-apps', '--disable-extensions', '--mute-audio', '--hide-scrollbars',
      '--user-data-dir=' + userDir, '--remote-debugging-port=0', '--window-size=1400,900', 'about:blank'];
    let proc;
    try { proc = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe'] }); }
    catch (e) { return reject(new Error('cannot start ' + chromium + ': ' + e.message)); }
    let err = '';
    const timer = setTimeout(function () { reject(new Error('Chromium printed no DevTools URL within 20 s; stderr: ' + err.slice(-1500))); }, 20000);
    proc.on('error', function (e) { clearTimeout(timer); reject(new Error('cannot start ' + chromium + ': ' + e.message)); });
    proc.on('exit', function (code) { clearTimeout(timer); reject(new Error('Chromium exited with status ' + code + ' before it was ready; stderr: ' + err.slice(-1500))); });
    proc.stderr.on('data', function (d) {
      err += d.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(timer); proc.removeAllListeners('exit'); resolve({ proc: proc, url: m[1] }); }
    });
  });
}

// ---------------------------------------------------------------- page helpers
function Page(cdp, session) { this.cdp = cdp; this.s = session; this.errors = []; }
Page.prototype.send = function (m, p, t) { return this.cdp.send(m, p, this.s, t); };
Page.prototype.eval = async function (expr) {
  const r = await this.send('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) throw new Error('page threw: ' + (r.exceptionDetails.exception ? r.exceptionDetails.exception.description : r.exceptionDetails.text) + ' in ' + expr.slice(0, 200));
  return r.result.value;
};
Page.prototype.open = async function (file) {
  const t0 = Date.now();
  await this.send('Page.navigate', { url: 'file://' + path.resolve(file) });
  for (;;) {
    const ok = await this.eval('!!(document.body && document.body.dataset.ready === "1" && window.cgprof)').catch(function () { return false; });
    if (ok) break;
    if (this.errors.length) throw new Error('JavaScript error in ' + file + ': ' + this.errors.join('; '));
    if (Date.now() - t0 > 20000) throw new Error(file + ' did not finish rendering within 20 s');
    await sleep(20);
  }
  return Date.now() - t0;
};
Page.prototype.move = function (x, y) { return this.send('Input.dispatchMouseEvent', { type: 'mouseMoved', x: x, y: y }); };
Page.prototype.click = async function (x, y) {
  await this.move(x, y);
  await this.send('Input.dispatchMouseEvent', { type: 'mousePressed', x: x, y: y, button: 'left', clickCount: 1 });
  await this.send('Input.dispatchMouseEvent', { type: 'mouseReleased', x: x, y: y, button: 'left', clickCount: 1 });
};
// Clicks the centre of the element matching sel, as a user would.
Page.prototype.clickOn = async function (sel) {
  const b = await this.eval('(function(){const e=document.querySelector(' + JSON.stringify(sel) + ');if(!e)return null;e.scrollIntoView({block:"center"});const r=e.getBoundingClientRect();return {x:r.left+r.width/2,y:r.top+r.height/2};})()');
  if (!b) throw new Error('no element ' + sel);
  await this.click(b.x, b.y);
};
Page.prototype.frames = function () { return this.eval('cgprof.frames()'); };
// Scrolls the flame graph so that frame f is in view; returns its fresh
// coordinates.
Page.prototype.reveal = async function (f) {
  return this.eval('(function(){const w=document.getElementById("wrap");const fs=cgprof.frames();' +
    'const f=fs.find(function(g){return g.path===' + JSON.stringify(f.path) + '&&g.part===' + JSON.stringify(f.part) + '});if(!f)return null;' +
    'const wr=w.getBoundingClientRect();if(f.cy<wr.top+10||f.cy>wr.bottom-10){w.scrollTop+=f.cy-(wr.top+wr.height/2);}' +
    'return cgprof.frames().find(function(g){return g.path===f.path&&g.part===f.part});})()');
};
Page.prototype.shot = async function (file) {
  const r = await this.send('Page.captureScreenshot', { format: 'png' });
  fs.writeFileSync(file, Buffer.from(r.data, 'base64'));
  note('screenshot ' + file);
};
function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

// ---------------------------------------------------------------- checks
let failures = 0;
function check(cond, msg) {
  if (cond) return;
  failures++;
  console.error('   MISMATCH: ' + msg);
}
// Every drawn frame 1 px or wider must have width share * W (within 1 px)
// and every expected frame wider than 2 px must be drawn.
function checkWidths(frames, W, expected, what) {
  const tot = expected[''];
  let n = 0;
  const drawn = new Map();
  for (const f of frames) {
    if (f.depth === 0) { check(Math.abs(f.w - W) < 0.5, what + ': ALL is ' + f.w + ' px wide, not ' + W); continue; }
    drawn.set(f.path, f);
    if (f.w < 1) continue;
    const want = expected[f.path];
    check(want !== undefined, what + ': drew ' + f.path + ', which has no time in this view');
    if (want === undefined) continue;
    check(Math.abs(f.w - want / tot * W) <= 1, what + ': ' + f.path + ' is ' + f.w.toFixed(2) + ' px, expected ' + (want / tot * W).toFixed(2));
    n++;
  }
  for (const p in expected) {
    if (p && expected[p] / tot * W > 2) check(drawn.has(p), what + ': ' + p + ' (' + (100 * expected[p] / tot).toFixed(1) + ' %) is not drawn');
  }
  check(n > 0, what + ': no frames drawn');
  return n;
}

async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  // cfg: chromium, userDir, artifacts, report, expect {cpu, latency, hotspots_cpu, search:{query,share}},
  //      demo {report, expect}, compare, big {report, nodes}
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  let br;
  try { br = await launch(cfg.chromium, cfg.userDir); } catch (e) { die(e.message); }
  const ws = await wsConnect(br.url).catch(function (e) { die('cannot connect to Chromium DevTools at ' + br.url + ': ' + e.message); });
  const cdp = new Cdp(ws);
  const started = Date.now();
  try {
    const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: targetId, flatten: true });
    const page = new Page(cdp, sessionId);
    cdp.listeners.push(function (m) {
      if (m.sessionId !== sessionId) return;
      if (m.method === 'Runtime.exceptionThrown') page.errors.push(m.params.exceptionDetails.exception ? m.params.exceptionDetails.exception.description : m.params.exceptionDetails.text);
      if (m.method === 'Runtime.consoleAPICalled' && m.params.type === 'error') page.errors.push(m.params.args.map(function (a) { return a.value || a.description; }).join(' '));
    });
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Emulation.setDeviceMetricsOverride', { width: 1400, height: 900, deviceScaleFactor: 1, mobile: false });
    const E = cfg.expect;

    // 1. Overview, CPU view: frames and widths.
    console.log('== overview (CPU view) of the constructed profile');
    await page.open(cfg.report);
    let W = await page.eval('cgprof.width()');
    let st = await page.eval('({tab: cgprof.state.tab, mask: cgprof.state.mask, view: cgprof.state.view})');
    check(st.tab === 'overview' && st.view === 'cpu', 'the report opens on ' + JSON.stringify(st) + ', not the CPU overview');
    let n = checkWidths(await page.frames(), W, E.cpu, 'CPU overview');
    note(n + ' frames match their CPU share (canvas ' + W + ' px)');
    await page.shot(path.join(cfg.artifacts, '1-overview-cpu.png'));

    // Hover: full name, self and total time, share, estimated cost.
    const fr = await page.frames();
    const big = fr.filter(function (f) { return f.depth === 2; }).sort(function (a, b) { return b.w - a.w; })[0];
    let f = await page.reveal(big);
    await page.move(f.cx, f.cy);
    const tipText = await page.eval('document.getElementById("tip").style.display === "block" ? document.getElementById("tip").innerText : ""');
    check(tipText.indexOf(big.name) >= 0, 'tooltip over ' + big.name + ' says: ' + tipText);
    const share = (100 * E.cpu[big.path] / E.cpu['']).toFixed(2) + ' %';
    check(tipText.indexOf(share) >= 0, 'tooltip lacks the share ' + share + ': ' + tipText);
    check(/Self: /.test(tipText) && /Total: /.test(tipText), 'tooltip lacks self/total: ' + tipText);
    check(/\$[0-9,.]+ \/ year/.test(tipText) && /estimate/.test(tipText), 'tooltip lacks the estimated yearly cost: ' + tipText);
    note('hover: ' + tipText.split('\n')[0] + ' | ' + (tipText.match(/Total: [^\n]*/) || [''])[0]);
    await page.shot(path.join(cfg.artifacts, '2-hover.png'));

    // 2. Latency view.
    console.log('== latency view');
    await page.clickOn('button[data-view="latency"]');
    st = await page.eval('({mask: cgprof.state.mask, view: cgprof.state.view, color: cgprof.state.color})');
    check(st.view === 'latency' && st.color === 'state', 'latency button gave ' + JSON.stringify(st));
    n = checkWidths(await page.frames(), W, E.latency, 'latency overview');
    note(n + ' frames match their latency share');
    await page.shot(path.join(cfg.artifacts, '3-overview-latency.png'));
    // Custom: only WAITING.
    await page.eval('(function(){document.querySelectorAll("#states input").forEach(function(i){if(i.checked)i.click();});' +
      'document.querySelector("#states input[data-c=\\"' + E.counters.indexOf('WAITING') + '\\"]").click();})()');
    st = await page.eval('({mask: cgprof.state.mask, view: cgprof.state.view, boxes: Array.from(document.querySelectorAll("#states input:checked")).map(function(i){return +i.dataset.c;})})');
    check(st.view === 'custom' && st.boxes.length === 1 && st.boxes[0] === E.counters.indexOf('WAITING') &&
          (st.mask & (1 << E.counters.indexOf('WAITING'))), 'custom WAITING gave ' + JSON.stringify(st));
    n = checkWidths(await page.frames(), W, E.waiting, 'custom WAITING view');
    note(n + ' frames match their WAITING share');
    await page.clickOn('button[data-view="cpu"]');

    // 3. Zoom into a frame, then ALL resets.
    console.log('== zoom');
    f = await page.reveal(big);
    await page.click(f.cx, f.cy);
    let after = await page.frames();
    const z = after.find(function (g) { return g.path === big.path; });
    check(z && Math.abs(z.w - W) < 0.5, 'after clicking ' + big.path + ' it is ' + (z && z.w) + ' px wide, not the full ' + W);
    const kids = after.filter(function (g) { return g.path.indexOf(big.path + ';') === 0 && g.depth === big.depth + 1 && g.w >= 1; });
    check(kids.length > 0, 'no children drawn after zooming into ' + big.path);
    for (const k of kids) check(Math.abs(k.w - E.cpu[k.path] / E.cpu[big.path] * W) <= 1, 'zoomed ' + k.path + ' is ' + k.w + ' px, expected ' + (E.cpu[k.path] / E.cpu[big.path] * W));
    note('zoomed into ' + big.path + ': ' + kids.length + ' children rescaled to it');
    check(await page.eval('document.getElementById("details").innerText.indexOf(' + JSON.stringify(big.name) + ') >= 0'), 'details panel does not name the clicked frame');
    await page.shot(path.join(cfg.artifacts, '4-zoomed.png'));
    await page.clickOn('#reset');
    check(await page.eval('cgprof.state.zoom.overview === 0'), 'ALL did not reset the zoom');
    checkWidths(await page.frames(), W, E.cpu, 'CPU overview after ALL');

    // 4. Search highlight.
    console.log('== search');
    await page.clickOn('#search');
    await page.send('Input.insertText', { text: E.search.query });
    const m = await page.eval('({text: document.getElementById("match").textContent, share: +document.getElementById("match").dataset.share})');
    check(Math.abs(m.share - E.search.share) < 1e-9, 'search "' + E.search.query + '" matched ' + m.share + ' of the time, expected ' + E.search.share);
    note('search "' + E.search.query + '": ' + m.text);
    await page.shot(path.join(cfg.artifacts, '5-search.png'));
    await page.eval('(function(){const s=document.getElementById("search");s.value="";s.dispatchEvent(new Event("input"));})()');

    // 5. Hotspots: the first level is self time by frame name.
    console.log('== hotspots');
    await page.clickOn('#tabs button[data-tab="hotspots"]');
    n = checkWidths(await page.frames(), W, E.hotspots_cpu, 'CPU hotspots');
    note(n + ' hotspot frames match');
    await page.shot(path.join(cfg.artifacts, '6-hotspots.png'));

    // 6. Inspect the selected frame: callers below, callees above.
    console.log('== inspect');
    await page.clickOn('#tabs button[data-tab="overview"]');
    const target = (await page.frames()).find(function (g) { return g.name === E.inspect.name && g.w >= 3; });
    check(!!target, 'frame ' + E.inspect.name + ' not drawn in the overview');
    if (target) {
      f = await page.reveal(target);
      await page.click(f.cx, f.cy);
      await page.clickOn('#do-inspect');
      const fi = await page.frames();
      const mid = fi.filter(function (g) { return g.depth === 0; });
      check(mid.length >= 1 && mid.every(function (g) { return g.name === E.inspect.name && Math.abs(g.w - W) < 0.5; }), 'inspect: the centre bar is not ' + E.inspect.name);
      for (const side of ['callers', 'callees']) {
        for (const p in E.inspect[side]) {
          const g = fi.find(function (h) { return h.part === side && h.path === p; });
          const want = E.inspect[side][p] / E.inspect.total * W;
          check(g && Math.abs(g.w - want) <= 1, 'inspect ' + side + ' ' + p + ': ' + (g ? g.w.toFixed(1) : 'missing') + ' px, expected ' + want.toFixed(1));
        }
      }
      const rows = fi.reduce(function (a, g) { a[g.part] = Math.max(a[g.part] || 0, g.depth); return a; }, {});
      const cy = fi.filter(function (g) { return g.part === 'callers' && g.depth === 1; })[0];
      const ce = fi.filter(function (g) { return g.part === 'callees' && g.depth === 1; })[0];
      check(cy && ce && cy.cy > mid[0].cy && ce.cy < mid[0].cy, 'inspect: callers are not below and callees above');
      note('inspect ' + E.inspect.name + ': ' + (rows.callers || 0) + ' caller levels below, ' + (rows.callees || 0) + ' callee levels above');
      await page.shot(path.join(cfg.artifacts, '7-inspect.png'));
    }

    // 7. Hide a frame: it disappears, its children take its place.
    console.log('== hide / unhide');
    await page.clickOn('#tabs button[data-tab="overview"]');
    await page.clickOn('#reset');
    const hf = (await page.frames()).find(function (g) { return g.name === E.hide.name; });
    check(!!hf, 'frame ' + E.hide.name + ' not drawn');
    if (hf) {
      f = await page.reveal(hf);
      await page.click(f.cx, f.cy);
      await page.clickOn('#do-hide');
      const fh = await page.frames();
      check(!fh.some(function (g) { return g.name === E.hide.name; }), E.hide.name + ' still drawn after Hide');
      n = checkWidths(fh, W, E.hide.cpu, 'CPU overview with ' + E.hide.name + ' hidden');
      note('hid ' + E.hide.name + ': ' + n + ' frames match the re-parented tree');
      await page.shot(path.join(cfg.artifacts, '8-hidden.png'));
      await page.clickOn('#hidden button[data-unhide="-1"]');
      checkWidths(await page.frames(), W, E.cpu, 'CPU overview after Unhide all');
    }

    // 8. My code: selecting module "app" greys out the rest.
    await page.eval('document.getElementById("mycode").open = true');
    await page.eval('(function(){const i=Array.from(document.querySelectorAll("#mycode-pop input[data-m]")).find(function(i){return i.parentNode.textContent.trim().indexOf("app ")===0;});i.click();})()');
    check(await page.eval('cgprof.state.mine.size === 1'), 'My code did not take module app');
    await page.shot(path.join(cfg.artifacts, '9-mycode.png'));
    await page.clickOn('#only-mine');
    const fm = await page.frames();
    check(fm.every(function (g) { return g.depth === 0 || g.name.indexOf('app:') === 0; }), 'only my code still draws other modules');
    n = checkWidths(fm, W, E.mine, 'CPU overview, only my code');
    note('only my code (module app): ' + n + ' frames match');
    await page.clickOn('#only-mine');
    await page.eval('document.getElementById("mycode").open = false');
    checkWidths(await page.frames(), W, E.cpu, 'CPU overview after my code off');

    // 9. Summary.
    console.log('== summary');
    await page.clickOn('#tabs button[data-tab="summary"]');
    const sum = await page.eval('document.getElementById("summary").innerText');
    for (const k of ['CPU utilization', 'Agent CPU usage', 'Executing', 'Blocked', 'Waiting', 'Heap', 'Recommendations', 'Estimated yearly cost'])
      check(sum.indexOf(k) >= 0, 'summary lacks "' + k + '"');
    check(sum.indexOf(E.summary.blocked) >= 0, 'summary lacks the blocked time ' + E.summary.blocked);
    await page.shot(path.join(cfg.artifacts, '10-summary.png'));

    // 10. Compare view of two time ranges.
    console.log('== compare');
    await page.open(cfg.compare);
    await page.clickOn('#tabs button[data-tab="compare"]');
    const fc = await page.frames();
    check(fc.length > 3, 'compare view drew ' + fc.length + ' frames');
    const cf = fc.find(function (g) { return g.path === E.compare.path; });
    check(!!cf, 'compare: ' + E.compare.path + ' not drawn');
    if (cf) {
      check(Math.abs(cf.w - E.compare.width * W) <= 1, 'compare: ' + E.compare.path + ' is ' + cf.w + ' px, expected ' + E.compare.width * W);
      f = await page.reveal(cf);
      await page.move(f.cx, f.cy);
      const ct = await page.eval('document.getElementById("tip").innerText');
      check(ct.indexOf('A (baseline)') >= 0 && ct.indexOf(E.compare.diff) >= 0, 'compare tooltip lacks A/B and the difference ' + E.compare.diff + ': ' + ct);
      note('compare hover: ' + ct.replace(/\n/g, ' | '));
    }
    await page.shot(path.join(cfg.artifacts, '11-compare.png'));

    // 11. A real profile (the demo workload under the preload) against
    // cgprof's own folded output.
    if (cfg.demo) {
      console.log('== real profile (demo workload)');
      await page.open(cfg.demo.report);
      W = await page.eval('cgprof.width()');
      n = checkWidths(await page.frames(), W, cfg.demo.expect, 'demo overview');
      note(n + ' frames of the demo profile match its folded stacks');
      await page.shot(path.join(cfg.artifacts, '12-demo.png'));
    }

    // 12. First render of a 100 000-node profile.
    console.log('== first render of a ' + cfg.big.nodes + '-node profile');
    let best = Infinity, wall = 0;
    for (let k = 0; k < 3; k++) {
      await page.send('Page.navigate', { url: 'about:blank' });
      await sleep(50);
      const w = await page.open(cfg.big.report);
      const ms = await page.eval('cgprof.firstRenderMs');
      const nodes = await page.eval('cgprof.data.profiles[0].nodes');
      check(nodes === cfg.big.nodes, 'big profile has ' + nodes + ' nodes, expected ' + cfg.big.nodes);
      if (ms < best) { best = ms; wall = w; }
    }
    const drawn = (await page.frames()).length;
    const tm = await page.eval('cgprof.timings');
    note('last load: script start ' + (await page.eval('cgprof.firstRenderMs') - tm.parse - tm.load - tm.toolbar - tm.draw).toFixed(0) + ' ms, JSON.parse ' + tm.parse.toFixed(0) +
         ' ms, tree ' + tm.load.toFixed(0) + ' ms, toolbar ' + tm.toolbar.toFixed(0) + ' ms, draw ' + tm.draw.toFixed(0) + ' ms');
    console.log('first-render-ms ' + best.toFixed(0) + ' (' + cfg.big.nodes + ' nodes, ' + drawn + ' frames drawn, best of 3; navigate-to-ready ' + wall + ' ms)');
    check(best < cfg.big.limitMs, 'first render took ' + best.toFixed(0) + ' ms, limit ' + cfg.big.limitMs);
    await page.shot(path.join(cfg.artifacts, '13-big.png'));
    check(page.errors.length === 0, 'JavaScript errors: ' + page.errors.join('; '));
  } catch (e) {
    failures++;
    console.error('   ERROR: ' + (e.stack || e.message));
  } finally {
    ws.close();
    br.proc.kill('SIGTERM');
  }
  console.log('   browser part took ' + ((Date.now() - started) / 1000).toFixed(1) + ' s');
  if (failures) die(failures + ' check(s) failed (see above)');
  console.log('ok: report_browser');
}
main().catch(function (e) { die(e.stack || e.message); });

// tend dashboard: filters that apply on change, and live updates. The
// server sends the loop's events (server-sent events on /events); on each,
// the live part of the page is fetched again from its fragment URL and
// swapped in, without a reload. No inline script: the CSP forbids it.
(function () {
  'use strict';

  var filters = document.getElementById('filters');
  if (filters) {
    filters.querySelectorAll('select').forEach(function (s) {
      s.addEventListener('change', function () { filters.submit(); });
    });
  }

  var live = document.getElementById('live');
  var state = document.getElementById('live-state');
  var list = document.getElementById('events');
  function say(text) { if (state) { state.textContent = 'live updates: ' + text; } }
  if (!live || !window.EventSource || !window.fetch) {
    say('off (this browser lacks EventSource)');
    return;
  }

  var timer = null, busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var url = live.getAttribute('data-fragment') + window.location.search;
    fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) {
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.text();
      })
      .then(function (html) {
        live.innerHTML = html; // rendered and escaped by the server's templates
        document.body.setAttribute('data-updated', String(Date.now()));
        say('on, updated ' + new Date().toLocaleTimeString());
      })
      .catch(function (e) { say('refresh failed (' + e.message + '), retrying on the next event'); })
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  }

  function show(ev) {
    if (!list) { return; }
    var li = document.createElement('li');
    var when = new Date(ev.time);
    var text = when.toLocaleTimeString() + ' ' + ev.kind;
    if (ev.server) { text += ' ' + ev.server; }
    if (ev.version) { text += ' ' + ev.version; }
    if (ev.message) { text += ': ' + ev.message; }
    li.textContent = text;
    li.className = ev.kind;
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 8) { list.removeChild(list.lastChild); }
  }

  var es = new EventSource('/events');
  es.addEventListener('open', function () { say('on'); });
  es.addEventListener('error', function () { say('reconnecting'); });
  es.addEventListener('tend', function (m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (ev.kind !== 'pass' || ev.message !== 'no-change') { show(ev); }
    schedule();
  });
})();

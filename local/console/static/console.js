// Live updates for the Baton console: the server's event stream says which messages changed, and
// the page swaps in the parts marked data-live from a fresh copy of itself. Without JavaScript the
// pages read the same, only without updates.
const indicator = document.getElementById('live');
const pageMessage = document.body.dataset.messageId;
let running = false;
let again = false;

async function refresh() {
  if (running) {
    again = true;
    return;
  }
  running = true;
  try {
    const res = await fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' });
    if (!res.ok) return;
    const fresh = new DOMParser().parseFromString(await res.text(), 'text/html');
    for (const current of document.querySelectorAll('[data-live]')) {
      const next = fresh.getElementById(current.id);
      // Unchanged parts stay as they are, so the outbox's frame does not reload for nothing.
      if (next && next.innerHTML !== current.innerHTML) current.replaceWith(document.importNode(next, true));
    }
  } finally {
    running = false;
    if (again) {
      again = false;
      void refresh();
    }
  }
}

const events = new EventSource('/console/events');
events.addEventListener('open', () => {
  if (indicator) indicator.hidden = false;
  // Whatever changed between this page's rendering and the stream's start.
  void refresh();
});
events.addEventListener('error', () => {
  if (indicator) indicator.hidden = true;
});
events.addEventListener('change', (event) => {
  const { ids } = JSON.parse(event.data);
  if (!pageMessage || ids.includes(pageMessage)) void refresh();
});

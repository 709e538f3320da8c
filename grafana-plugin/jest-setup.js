// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';

// Browser APIs jsdom lacks and @grafana/ui's menus use (scroll indicators,
// virtualised lists). They only report; nothing is observed in jsdom.
class NoopObserver {
  observe() {}
  unobserve() {}
  disconnect() {}
  takeRecords() {
    return [];
  }
}
if (typeof global.IntersectionObserver === 'undefined') {
  global.IntersectionObserver = NoopObserver;
}
if (typeof global.ResizeObserver === 'undefined') {
  global.ResizeObserver = NoopObserver;
}

// i18next (through @grafana/i18n) advertises itself on the console once per test file.
const info = console.info;
console.info = (...args) => {
  if (typeof args[0] === 'string' && args[0].includes('i18next is made possible')) {
    return;
  }
  info(...args);
};

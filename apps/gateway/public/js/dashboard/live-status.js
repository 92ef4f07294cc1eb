// The connection badge in the page header, shared by the live updates and the REST client (sign-out).
import { dom, setText } from './page.js';

const LIVE_STYLE = {
  connecting: 'text-bg-secondary',
  connected: 'text-bg-success',
  reconnecting: 'text-bg-warning',
  offline: 'text-bg-danger',
};

export function setLive(state, text) {
  dom.liveStatus.dataset.state = state;
  dom.liveStatus.className = `badge rounded-pill live-status ${LIVE_STYLE[state]}`;
  setText(dom.liveStatus, 'text', text);
}

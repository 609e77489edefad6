// The app's commands and events (src-tauri/src/commands.rs), one function
// each. Nothing else in the UI talks to Tauri.

const tauri = window.__TAURI__;
const invoke = (cmd, args) => tauri.core.invoke(cmd, args);

export const api = {
  appInfo: () => invoke("app_info"),
  listBottles: () => invoke("list_bottles"),
  knownBottles: () => invoke("known_bottles"),
  launch: (name) => invoke("launch_bottle", { name }),
  rebuild: (name) => invoke("rebuild_bottle", { name }),
  stop: (name) => invoke("stop_bottle", { name }),
  verify: (name) => invoke("verify_bottle", { name }),
  openInTerminal: (name) => invoke("open_shell", { name }),
  audit: (name, limit) => invoke("audit", { name, limit }),
  followAudits: (names, read, limit) => invoke("follow_audits", { names, read, limit }),
  lastFailure: (name) => invoke("last_failure", { name }),
  loadBottle: (name) => invoke("load_bottle", { name }),
  loadBottleText: (name) => invoke("load_bottle_text", { name }),
  saveBottle: (form) => invoke("save_bottle", { form }),
  saveBottleText: (name, text, revision) => invoke("save_bottle_text", { name, text, revision }),
  doctor: () => invoke("doctor"),
  fixEngine: () => invoke("fix_engine"),
  listRequests: () => invoke("list_requests"),
  newBottleChoices: () => invoke("new_bottle_choices"),
  createBottle: (request) => invoke("create_bottle", { request }),
  answerRequest: (name, id, answer, note) => invoke("answer_request", { name, id, answer, note }),
  termOpen: (bottle, kind, cols, rows) => invoke("terminal_open", { bottle, kind, cols, rows }),
  termList: () => invoke("terminal_list"),
  termAttach: (id, channel) => invoke("terminal_attach", { id, channel }),
  termAck: (id, upto) => invoke("terminal_ack", { id, upto }),
  termInput: (id, text) => invoke("terminal_input", { id, text }),
  termInputBytes: (id, bytes) => invoke("terminal_input", { id, bytes }),
  termResize: (id, cols, rows) => invoke("terminal_resize", { id, cols, rows }),
  termClose: (id) => invoke("terminal_close", { id }),
  openLink: (url) => invoke("open_link", { url }),
  // Released with its webview; the menu bar or a notification brings it back.
  closeWindow: () => tauri.window.getCurrentWindow().close(),
};

/** A channel the app streams to (a terminal's output). */
export const newChannel = () => new tauri.core.Channel();

/** Calls `f` with each payload of the app event `event`. */
export const on = (event, f) => tauri.event.listen(event, (e) => f(e.payload));

/** The folder picker, when the dialog plugin is there. */
export const pickFolder = async () => (tauri.dialog?.open ? tauri.dialog.open({ directory: true }) : null);

// The console's one mutable state, shared by every module (each module reads and writes the parts of
// its own view; sign-out in console.js resets them). Changed in place, never replaced.
export const state = {
  key: null,
  info: null, // answer of /v1/console/storage: workspace, admin, quotas
  view: "files",
  files: [],
  nextPage: null,
  filesToken: 0,
  loadingAll: false,
  scope: "",
  nameFilter: "",
  selected: null,
  previewToken: 0,
  previewUrls: [],
  requests: [],
  pendingRequests: [],
  lastSeqs: {}, // per server process (each worker of --workers N numbers its own requests)
  paused: false,
  unseen: 0,
  ownRequestIds: new Set(),
  pollTimer: null,
  polling: false,
  refreshTimer: null,
};

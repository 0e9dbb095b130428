// The hub's explorer page: GraphiQL with the explorer plugin, signed in by the session
// cookie. Nothing is kept in the browser's storage and nothing goes into the URL.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="mash-csrf"]').content;
  var saved = JSON.parse(document.getElementById("saved-operations").textContent);

  // GraphiQL keeps tabs, queries, variables, headers, results and its theme in the storage
  // it is given: this one forgets everything when the page closes.
  var memory = new Map();
  var storage = {
    getItem: function (key) { return memory.has(key) ? memory.get(key) : null; },
    setItem: function (key, value) { memory.set(key, String(value)); },
    removeItem: function (key) { memory.delete(key); },
    clear: function () { memory.clear(); },
    key: function (index) { var keys = Array.from(memory.keys()); return index < keys.length ? keys[index] : null; },
    get length() { return memory.size; }
  };

  function signedOut() {
    document.getElementById("signed-in").hidden = true;
    document.getElementById("signed-out").hidden = false;
  }

  // Same-origin POSTs with the session cookie and its CSRF token; no Authorization header.
  async function fetcher(params) {
    var response = await fetch("/graphql", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": csrf
      },
      body: JSON.stringify(params)
    });
    if (response.status === 401) { signedOut(); }
    return response.json();
  }

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    storage: storage,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    defaultTabs: saved,
    isHeadersEditorEnabled: false,
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: "variables"
  }));
})();

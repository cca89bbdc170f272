// Swagger UI for /openapi.json. An external script (no inline code): the page runs under the
// site's Content-Security-Policy (script-src 'self', style-src 'self'). BaseLayout and the apis
// preset only: the standalone preset's top bar would load a spec from any URL and brings an
// inline <style>.
'use strict';

window.addEventListener('DOMContentLoaded', function () {
  var root = document.getElementById('swagger-ui');
  if (typeof window.SwaggerUIBundle !== 'function') {
    // nginx answered 404 for the bundle: the UI files were never installed on this machine.
    var message = document.createElement('p');
    message.id = 'docs-missing';
    message.textContent = 'Swagger UI is not installed here: run `make docs-ui` (or `make setup`) '
      + 'in the FloriSense clone, then reload this page. The spec itself is /openapi.json.';
    root.appendChild(message);
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    layout: 'BaseLayout',
    presets: [window.SwaggerUIBundle.presets.apis],
    deepLinking: true,
    validatorUrl: null,  // the default sends the spec to validator.swagger.io
    supportedSubmitMethods: ['get', 'post'],
    tryItOutEnabled: false,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
  });
});

// /api/docs: Swagger UI on the gateway's OpenAPI document. A file of its own (script-src 'self'); the base
// layout has no top bar (its logo carries an inline style the CSP refuses) and the online validator is off
// (it would load a third-party image).
window.ui = window.SwaggerUIBundle({
  url: '/api/docs.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  validatorUrl: null,
});

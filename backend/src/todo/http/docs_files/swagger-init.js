// Starts Swagger UI on /docs. A file of its own, not an inline script, so that the page runs
// under its Content-Security-Policy. FastAPI's default options, and no online validator:
// its badge would load an image from swagger.io.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: "none",
  presets: [SwaggerUIBundle.presets.apis],
});

// The OpenAPI document the service generates from its pydantic models: the pages read field names,
// types, limits and descriptions from it instead of keeping a second list of fields.
import { api, API } from "./api.js";

let documentPromise = null;

export function openapi() {
  if (!documentPromise) {
    documentPromise = api.get("/openapi.json").catch((err) => {
      documentPromise = null; // try again next time
      throw err;
    });
  }
  return documentPromise;
}

// Follows `$ref`s into components.schemas; `anyOf [X, null]` becomes X with `nullable`.
export function resolve(doc, schema) {
  let s = schema || {};
  const seen = new Set();
  while (s.$ref && !seen.has(s.$ref)) {
    seen.add(s.$ref);
    const name = s.$ref.split("/").pop();
    const { $ref, ...rest } = s;
    s = { ...doc.components.schemas[name], ...rest };
  }
  if (Array.isArray(s.anyOf)) {
    const real = s.anyOf.filter((x) => x.type !== "null");
    if (real.length === 1 && real.length < s.anyOf.length) {
      const { anyOf, ...rest } = s;
      return { ...resolve(doc, real[0]), ...rest, nullable: true };
    }
  }
  return s;
}

export function operation(doc, path, method) {
  return doc.paths[API + path]?.[method.toLowerCase()] || null;
}

// The request body schema of `method path` ("/custom-mqtt/config"), or null if this build lacks it.
export function bodySchema(doc, path, method = "put") {
  const op = operation(doc, path, method);
  const schema = op?.requestBody?.content?.["application/json"]?.schema;
  return schema ? resolve(doc, schema) : null;
}

// The 200 response schema of `GET path`, or null.
export function responseSchema(doc, path) {
  const schema = operation(doc, path, "get")?.responses?.["200"]?.content?.["application/json"]?.schema;
  return schema ? resolve(doc, schema) : null;
}

// Whether this build serves `method path`: pages ask before calling a part of the API that may
// not exist yet (a request answered 404 would be a console error, and says nothing more).
export async function serves(path, method = "get") {
  return operation(await openapi(), path, method) !== null;
}

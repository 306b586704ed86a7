#!/usr/bin/env node
// Compile the contract's JSON Schemas with Ajv in strict mode (draft 2020-12) and validate documents against them.
//
//   node scripts/validate.mjs SCHEMA_DIR SAMPLES.json
//
// SAMPLES.json: {"envelope": [...], "result": [...], "event": [...]}. Prints one JSON line:
// {"compiled": [...names], "checked": {"event": 12, ...}, "errors": [{kind, index, errors}]}; exits 1 on any error.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";

const [schemaDir, samplesPath] = process.argv.slice(2);
if (!schemaDir || !samplesPath) {
  console.error("usage: node scripts/validate.mjs SCHEMA_DIR SAMPLES.json");
  process.exit(2);
}

// strict: true turns every strict-mode check (unknown keywords, types, tuples, required) into an error.
const ajv = new Ajv2020({ strict: true, allErrors: true });
const samples = JSON.parse(readFileSync(samplesPath, "utf8"));
const report = { compiled: [], checked: {}, errors: [] };
for (const [kind, documents] of Object.entries(samples)) {
  const schema = JSON.parse(readFileSync(join(schemaDir, `${kind}.schema.json`), "utf8"));
  const validate = ajv.compile(schema);
  report.compiled.push(schema.$id);
  report.checked[kind] = documents.length;
  documents.forEach((document, index) => {
    if (!validate(document)) report.errors.push({ kind, index, errors: validate.errors });
  });
}
console.log(JSON.stringify(report));
process.exit(report.errors.length === 0 ? 0 : 1);

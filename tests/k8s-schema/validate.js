#!/usr/bin/env node
// Checks Kubernetes objects against the OpenAPI schemas of the kubernetes-models packages
// (package.json beside this file pins them; scripts/install-deps installs them with npm ci).
//
//   node validate.js INSTALL_DIR < objects.json
//
// INSTALL_DIR holds the node_modules that npm ci made from this folder's package-lock.json.
// stdin: a JSON array of objects (tests/integration/test_helm_chart.py converts helm's YAML).
// Each object is built with the model class of its apiVersion and kind and validated; one line
// per object on stdout, in input order: "Kind/name: ok" or "Kind/name: invalid: ERRORS" or
// "Kind/name: no model for APIVERSION KIND". Exit status 0 when every object is ok, 1 otherwise,
// 2 on unusable input. A kind without a model fails: nothing passes unchecked.
"use strict";

const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

// The packages holding models, looked up in this order: MODEL_PACKAGES[i]/<apiVersion>/<kind>,
// e.g. kubernetes-models/apps/v1/StatefulSet, kubernetes-models/v1/Service (the core group).
const MODEL_PACKAGES = ["kubernetes-models", "@kubernetes-models/prometheus-operator"];

function usage(message) {
  process.stderr.write(`validate.js: ${message}\n`);
  process.stderr.write("usage: node validate.js INSTALL_DIR < objects.json\n");
  process.exit(2);
}

function modelFor(load, apiVersion, kind) {
  // Both become parts of a module path: only names as Kubernetes spells them.
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    return null;
  }
  for (const pkg of MODEL_PACKAGES) {
    let mod;
    try {
      mod = load(`${pkg}/${apiVersion}/${kind}`);
    } catch (e) {
      if (e.code === "MODULE_NOT_FOUND" || e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED") continue;
      throw e;
    }
    const Model = mod[kind];
    if (Model && Model.apiVersion === apiVersion && Model.kind === kind) return Model;
  }
  return null;
}

function describe(error) {
  if (Array.isArray(error.errors) && error.errors.length > 0) {
    return error.errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
  }
  return error.message;
}

function main() {
  const installDir = process.argv[2];
  if (!installDir || process.argv.length !== 3) usage("one argument: the install directory");
  if (!fs.existsSync(path.join(installDir, "node_modules", MODEL_PACKAGES[0]))) {
    usage(`${installDir}: no node_modules/${MODEL_PACKAGES[0]} (run scripts/install-deps)`);
  }
  const load = createRequire(path.join(path.resolve(installDir), "package.json"));

  let objects;
  try {
    objects = JSON.parse(fs.readFileSync(0, "utf8"));
  } catch (e) {
    usage(`stdin is not JSON: ${e.message}`);
  }
  if (!Array.isArray(objects) || objects.length === 0) usage("stdin: expected a non-empty array");

  let failed = 0;
  for (const object of objects) {
    if (object === null || typeof object !== "object" || Array.isArray(object)) {
      usage("stdin: every element must be an object");
    }
    const kind = String(object.kind);
    const apiVersion = String(object.apiVersion);
    const name = object.metadata && object.metadata.name;
    const label = `${kind}/${name}`;
    const Model = modelFor(load, apiVersion, kind);
    if (Model === null) {
      console.log(`${label}: no model for ${apiVersion} ${kind}`);
      failed += 1;
      continue;
    }
    try {
      new Model(object).validate();
      console.log(`${label}: ok`);
    } catch (e) {
      console.log(`${label}: invalid: ${describe(e)}`);
      failed += 1;
    }
  }
  process.exit(failed === 0 ? 0 : 1);
}

main();

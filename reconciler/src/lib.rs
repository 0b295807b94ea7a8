//! mcp-gitops: a GitOps reconciler for the MCP runtime platform.
//!
//! The pipeline, one module per stage: `source` (files from a directory, a git revision or the
//! daemon's mirror) -> `load` (YAML with positions, typed objects) -> `validate` (schemas,
//! identity, cross-reference against the gateway metadata, guardrails) -> `plan` (desired vs a
//! base or the live cluster: object and access changes) -> `apply` (server-side apply, prune, the
//! inventory, waiting for the operator). `trust` verifies the signatures and signers of commits.
//! Beside the stages: `model` holds the shared plain data types, `schema` the JSON Schemas,
//! `gateway` the gateway's decision model and the operator's policy rendering, `cluster` is the
//! only code that talks to Kubernetes, and `render` turns plans and answers into text, JSON,
//! Markdown and the forges' formats. `pipeline` is what every front end does with the stages,
//! written once; the front ends are `cli` (arguments, rendering, exit codes; only it and the
//! binary print) and `daemon` (triggers, leadership, status). `parallel` spreads the pure
//! per-file and per-object work over the cores in a fixed order; `cache` keeps what that work
//! made between runs. `scaffold` starts a repository: its first files, or what a cluster holds.
//! `install` puts the daemon in a cluster: deploy/'s manifests set for one git source.
//! `windows` tells when a freeze window of `mcp-gitops.yaml` is open. `fleet` reads where each
//! cluster of a fleet stands (`fleet status`).
//! `review` judges grants by the gateway's audit records (used, unused, shadowed, too young, not
//! judged).

pub mod apply;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod daemon;
pub mod fleet;
pub mod gateway;
pub mod install;
pub mod load;
pub mod model;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod render;
pub mod review;
pub mod scaffold;
pub mod schema;
pub mod source;
pub mod trust;
pub mod validate;
pub mod windows;

//! mcp-gitops: a GitOps reconciler for the MCP runtime platform.
//!
//! The pipeline, one module per stage: `source` (files from a directory or a git revision) ->
//! `load` (YAML with positions, typed objects) -> `validate` (schemas, identity, cross-reference
//! against the gateway metadata) -> `plan` (desired vs base, object and access changes, renderers).
//! `gateway` is the gateway's decision model and the operator's policy rendering. `cli` parses
//! arguments and wires the stages; only it and the binary print. `parallel` spreads the pure
//! per-file and per-object work of `load` and `validate` over the cores, in a fixed order;
//! `cache` keeps what that work made between runs.

pub mod apply;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod daemon;
pub mod gateway;
pub mod load;
pub mod model;
pub mod parallel;
pub mod plan;
pub mod render;
pub mod schema;
pub mod source;
pub mod trust;
pub mod validate;

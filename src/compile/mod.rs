//! Compiles a `ModelService` into the Kubernetes objects of SPEC.md.

//! The sans-IO engine (placeholder).

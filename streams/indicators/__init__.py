"""Indicator definitions: plain functions from facts and an evaluation time T to rows (no Kafka, no ClickHouse)."""

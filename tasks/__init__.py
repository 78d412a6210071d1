"""Prefect tasks: thin wrappers that fetch resources, call one domain function, leave artifacts."""

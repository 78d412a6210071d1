"""Data the project generates for its demo and its own evaluation: never imported by the domain.

Modules:
    demo
        Seeded, deterministic sample drops (KL sensor readings, Shenzhen orders) for demo and tests.
    demo_draws
        Shared pieces of the demo generators: the k floor, a person record and seeded draws.
    demo_orders
        Shenzhen retail: rows of the sz-retail/customer_orders sample drop.
    demo_sensors
        Kuala Lumpur building operations: rows of the my-buildops/sensor_readings sample drop.
    pii_evalset
        A seeded, labelled evaluation table for PII detection: positives, decoys and free text.
    pii_values
        PII values for the evaluation set, built from the published rules (check digits, formats).
"""

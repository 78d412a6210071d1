"""The cross-border gate's pure rules: the policy, the approval answers and their form, the
conditions and usage terms a grant must keep, and the terms as ODRL.

Modules:
    answers
        Why an approver's answer cannot be recorded: the form's own schema, checked in Python.
    form_binding
        What an approval form shows, bound to the question it asks: its description and its schema.
    grant_conditions
        Conditions an approver attached to a transfer: a grant resting on them must accept them.
    grant_terms
        A grant stays within its version's usage terms: a permitted purpose, and not past their
        expiry.
    odrl
        Usage terms as a machine-readable W3C ODRL 2.2 policy, stored with every version.
    policy
        Cross-border transfer policy: a pure function from measured facts to a decision per market.
    rules
        What an approver's answer must say, written once: it makes the form's schema and the check.
"""

"""Fake users for development: keys come from the row number, names from Faker."""

from seedkit import fixture, ref


@fixture("users", key=["email"], count=20)
def fake_users(fake, n):
    return {"email": f"user{n}@example.test", "name": fake.name(), "manager_id": ref("users", "ada@acme.test")}

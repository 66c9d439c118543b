#!/usr/bin/env python3
"""`cdk synth` / `cdk deploy` entry point: see stacks/app.py and the README ("Deploy")."""
from stacks.app import build_app

if __name__ == "__main__":
    app, _ = build_app()
    app.synth()

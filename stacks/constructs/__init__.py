"""One construct per concern; the stacks only compose them (and add tags and cdk-nag acknowledgements)."""

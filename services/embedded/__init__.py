"""The embedded collector (`profefe serve`): its group commit and its assembly."""

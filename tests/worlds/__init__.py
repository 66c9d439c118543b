"""The test worlds: one home for the deployment fixture and the scenes and read-backs the tests share.

- `deployment`: the in-memory AWS with the responder deployed (`dep`, one deployment per test module)
- `workflow`: GuardDuty events shaped like the examples, a read-back of IAM state
- `isolation`: small instances, adapters with a call counter, a read-back of what isolation changes
- `evidence`: instances with volumes under each kind of key, readers of the evidence chain's result
- `reliability`: a web-tier instance, whole-account read-backs and their diff, call interceptors
- `faults`: make chosen AWS calls of the handlers fail with a chosen error code
- `operations`: the incident record, the manifest, notifications, a configuration changed for one test
- `infra`: the synthesized cloud assemblies (CDK) the infrastructure tests read
"""

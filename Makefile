# eventline: one command for each thing a person wants. `make help` lists them.
# Everything installs what it needs first (scripts/setup.sh), so each target
# works on a fresh machine with only rustup and python3.

SHELL := /bin/bash
VENV := .venv/bin
MOTO_PORT ?= 5055
SOAK_SIGNUPS ?= 10000
# Runs of `make flaky`.
N ?= 10
ENDPOINT := http://127.0.0.1:$(MOTO_PORT)

.PHONY: demo drill dev send journey chaos soak flaky prove-tests redrive checkov help setup test unit lint fmt clippy sam-validate moto moto-stop provision watch invoke-all sam-build deploy ci clean-local

demo: ## Run the whole pipeline locally on sample signups, print a summary, clean up (REGIONS=3: in three regions)
	@scripts/demo.sh

drill: ## Region failure drill: three regions, one region's functions stopped 30 s while signups arrive; nothing lost, time to drain (DOWN=, OUTAGE=)
	@scripts/demo.sh --drill

dev: ## Like demo, but stays up (send with `make send FILE=...`; Ctrl-C stops)
	@scripts/demo.sh --dev

journey: ## After `make demo`: one signup's hops (function, region, attempt, outcome, duration) from the logs; ID= a user or correlation id
	@python3 scripts/journey.py $(if $(ID),--id $(ID))

send: ## Send signups to the running local stack: make send FILE=events/signups.json
	cargo run --quiet -p eventline-devstack -- send $(or $(FILE),events/signups.json)

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## Install the tool chain into .venv (moto, cargo-lambda, SAM CLI, cfn-lint, zig)
	@scripts/setup.sh

test: ## Run every test (unit, handler, adapters and flows against a private moto server)
	@scripts/test.sh

unit: ## Unit tests only (each crate's library and binary tests; no moto, no set-up): CI's fast job
	cargo test --workspace --lib --bins

flaky: setup ## Run the moto-backed suites N times (make flaky N=10) and print how many passed; fails if any failed
	@scripts/flaky.sh $(N)

prove-tests: setup ## Show each repaired test failing on a deliberately broken build (mutants in a temporary copy, about 15 min; ONLY="name ..." runs some; docs/reliability.md)
	@PATH="$(CURDIR)/.venv/bin:$$PATH" python3 scripts/prove_tests.py $(if $(ONLY),$(foreach m,$(ONLY),--only $(m)))

redrive: setup ## Put dead-lettered events back (forwarding DLQs onto the peer bus, consumers' DLQs into their function); local stack, or STACK= STACK_REGIONS="r1 r2" on AWS; DRY_RUN=1 prints only
	@.venv/bin/python scripts/redrive.py $(if $(STACK),--stack $(STACK) $(foreach r,$(STACK_REGIONS),--region $(r))) $(if $(DRY_RUN),--dry-run)

.PHONY: iam
iam: setup ## Check each AWS call the last `make test` recorded against its function's IAM role (docs/iam.md)
	@$(VENV)/python scripts/iam_check.py --prove-failure

chaos: setup ## Fault tests (duplicates, poison, outage, crash, slow and partial AWS, late duplicates, DLQ redrive) and their table; fails if any fails
	@set -o pipefail; mkdir -p target; \
	  PATH="$(CURDIR)/.venv/bin:$$PATH" cargo test --quiet -p eventline-tests --test chaos -- --nocapture --test-threads=1 >target/chaos.log 2>&1; \
	  status=$$?; awk '/^\|/ && !seen[$$0]++ { print } /^test result/ { print }' target/chaos.log; \
	  if [ $$status -ne 0 ]; then grep -E "^(---- |thread .* panicked|failures:|    [a-z_]+$$)" target/chaos.log; \
	    echo "make chaos: FAILED (exit $$status, full log: target/chaos.log)"; exit $$status; fi

soak: setup ## Soak: $(SOAK_SIGNUPS) signups (10 % duplicates, 5 % poison, an outage mid-run) in-process over moto; exact counts and records/s
	@set -o pipefail; mkdir -p target; \
	  PATH="$(CURDIR)/.venv/bin:$$PATH" SOAK_SIGNUPS=$(SOAK_SIGNUPS) cargo test --quiet -p eventline-tests --test chaos -- --ignored --exact soak --nocapture 2>&1 \
	  | tee target/soak.log | grep -E '^\||^soak:|^test result|panicked'

checkov: setup ## checkov on template.yaml and its SAM translation (own venv .venv-checkov); fails on any failed check
	@scripts/checkov.sh

lint: setup fmt clippy sam-validate checkov ## rustfmt check, clippy -D warnings, cfn-lint, sam validate --lint, checkov

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

sam-validate: setup ## Validate template.yaml offline (cfn-lint + sam validate --lint)
	$(VENV)/cfn-lint template.yaml
	$(VENV)/sam validate --lint --template template.yaml

moto: setup ## Start the local AWS (moto server) on $(ENDPOINT)
	@scripts/moto.sh start $(MOTO_PORT) >/dev/null && echo "moto server: $(ENDPOINT)"

moto-stop: ## Stop the local AWS started by `make moto`
	@scripts/moto.sh stop

provision: moto ## Deploy template.yaml into the local moto server (resets it first)
	$(VENV)/python scripts/provision.py --endpoint $(ENDPOINT) --reset

watch: provision ## Serve all four functions with cargo lambda watch, wired to the local stack
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda watch --env-file .local/functions.env

invoke-all: ## With `make watch` running: invoke each function on its sample event
	@for f in user-processor notification-processor welcome-email profile-creator; do \
	  file=$$(ls events/$$f.*.json); echo "== $$f ($$file)"; \
	  PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda invoke $$f --data-file $$file --output-format json; echo; \
	done

sam-build: setup ## Build the arm64 Lambda artifacts with sam build (cargo-lambda + zig)
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.venv/bin:$$PATH" $(VENV)/sam build

deploy: sam-build ## Deploy to a real AWS account (needs credentials; asks before changing anything)
	$(VENV)/sam deploy --guided

ci: lint test ## What CI runs

clean-local: moto-stop ## Forget local state (.local/)
	rm -rf .local

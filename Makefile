# Shouhu — the two set-up commands of the README:
#   make run    serve the platform with demo data on an embedded SQLite database (127.0.0.1:$(PORT))
#   make test   run the test suite (SHOUHU_DATABASE_URL=postgres://… runs it on PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
DEMO_CHILDREN ?= 5000
PYTEST_ARGS ?=

.PHONY: run test install migrate lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import django, stdnum, pypinyin, segno, huey, playwright, weasyprint"
	touch $@

install: $(VENV)/.installed

run: install
	SHOUHU_DEMO=1 $(BIN)/python manage.py migrate --noinput
	SHOUHU_DEMO=1 $(BIN)/python manage.py seed_demo --if-empty --children $(DEMO_CHILDREN)
	@# The huey worker (background imports) runs beside the server and stops when the server does.
	SHOUHU_DEMO=1 $(BIN)/python manage.py run_huey -w 2 -k thread & HUEY_PID=$$!; \
	trap 'kill $$HUEY_PID 2>/dev/null; wait $$HUEY_PID 2>/dev/null' EXIT INT TERM; \
	SHOUHU_DEMO=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --insecure

test: install
	SHOUHU_TESTING=1 $(BIN)/python manage.py makemigrations --check --dry-run > /dev/null || (echo "models changed without a migration: run manage.py makemigrations" && exit 1)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check shouhu bench
	$(BIN)/ruff format --check shouhu bench
	SHOUHU_TESTING=1 $(BIN)/mypy shouhu

bench: install
	$(BIN)/python bench/ledger.py --children 10000

clean:
	rm -rf var/shouhu.sqlite3* var/static

# The README's two commands: `make run` and `make test`.
# Both install the missing Debian packages from conf/debian-packages first.

BUILD      ?= build
ASAN_BUILD ?= build-asan
PACKAGES   := conf/debian-packages
JOBS       ?= 2

.PHONY: all deps build build-asan run test test-plain test-asan bench lint format clean

all: build

deps:
	@missing=""; \
	for p in $$(grep -v '^\s*#' $(PACKAGES)); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DIMMIDB_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)

run: build
	conf/dev-run.sh $(BUILD)

# The whole suite, in the normal build and in the sanitizer build.
test: test-plain test-asan

test-plain: build
	cd $(BUILD) && ctest --output-on-failure --timeout 300

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --timeout 300

bench: build
	bench/run.sh $(BUILD)

lint:
	test/lint.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

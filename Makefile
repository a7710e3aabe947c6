# vmm: a type-1 mini hypervisor for x86-64 (Intel VT-x with EPT), built as
# a UEFI application with Debian's GNU-EFI.
#
#   make            build build/vmm.efi (and the boot disk contents)
#   make test       unit tests (cmocka) and end-to-end boots (Bochs, QEMU)
#   make unit       unit tests only
#   make e2e        end-to-end tests only
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each
#   make bench      print BENCH lines
#   make run        boot the default demo in Bochs, serial console here

BUILD     ?= build
CC        ?= gcc
LD        ?= ld
OBJCOPY   ?= objcopy
EFI_INC   ?= /usr/include/efi
EFI_LIB   ?= /usr/lib

VERSION   := 0.1.0
GIT_REV   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN      := -Wall -Wextra -Werror
# Freestanding code: no red zone (interrupts and exceptions use the same
# stack), no SSE (guest FPU state must never be clobbered by the
# hypervisor), frame pointers for the panic backtrace.
IMAGE_CFLAGS := -std=c11 $(WARN) -O2 -g -ffreestanding -fpic -fshort-wchar \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector \
	-fno-omit-frame-pointer -fno-asynchronous-unwind-tables \
	-fno-strict-aliasing -DGNU_EFI_USE_MS_ABI \
	-DVMM_VERSION='"$(VERSION)"' -DVMM_GIT_REV='"$(GIT_REV)"' \
	-I. -Iinclude -isystem $(EFI_INC) -isystem $(EFI_INC)/x86_64
IMAGE_LDFLAGS := -nostdlib -znocombreloc -shared -Bsymbolic --no-undefined -T linker.ld

# Code shared with host tools and tests (no hardware access).
SHARED_SRCS := boot/config.c boot/memmap.c boot/acpi.c vmm/page_alloc.c \
	vmm/vmx_caps.c vmm/vm_state.c vmm/cpuid_policy.c devices/vuart.c \
	devices/console.c devices/port_bus.c devices/pic.c devices/pit.c devices/rtc.c \
	lib/calendar.c lib/fmt.c
IMAGE_SRCS := $(SHARED_SRCS) boot/efi_main.c boot/efi_console.c \
	boot/efi_file.c boot/efi_memory.c boot/vm_loader.c boot/handover.c boot/handover_switch.S \
	vmm/main.c vmm/log.c vmm/uart16550.c vmm/panic.c vmm/exceptions.S \
	vmm/vmx.c vmm/vmx_vcpu.c vmm/vmx_exit.c vmm/vmx_ept.c vmm/vmx_entry.S \
	vmm/vm.c vmm/vcpu.c vmm/guest_boot.c vmm/sched.c vmm/clock.c lib/string.c
IMAGE_OBJS := $(patsubst %,$(BUILD)/image/%.o,$(IMAGE_SRCS))

HOST_CFLAGS := -std=c11 $(WARN) -g -O1 -I. -Iinclude \
	-fsanitize=address,undefined -fno-sanitize-recover=all
UNIT_TESTS := fmt config memmap page_alloc acpi vmx_caps vm_state cpuid_policy \
	vm_lifecycle vuart port_bus pic pit rtc proto shell switch dhcp
UNIT_BINS := $(patsubst %,$(BUILD)/unit/test_%,$(UNIT_TESTS))

GUESTS_64 := hello64 cpuid_msr busy attack timer pic_pit reboot
GUEST_BINS := $(BUILD)/guests/hello.bin $(patsubst %,$(BUILD)/guests/%.bin,$(GUESTS_64))
GUEST_CFLAGS := -std=c11 $(WARN) -O2 -ffreestanding -fno-pic -fno-pie -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables \
	-Itests/guests/lib -Iinclude
GUEST_LIB := tests/guests/lib/start.S tests/guests/lib/guest.c tests/guests/lib/guest.h

.PHONY: all image unit e2e fuzz test bench run clean
all: image

image: $(BUILD)/vmm.efi $(GUEST_BINS)

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/image/%.c.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(IMAGE_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/image/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  AS      $<"
	$(Q)$(CC) $(IMAGE_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/vmm.so: $(IMAGE_OBJS) linker.ld
	$(LD) $(IMAGE_LDFLAGS) $(EFI_LIB)/crt0-efi-x86_64.o $(IMAGE_OBJS) \
		-L$(EFI_LIB) -lgnuefi -o $@

$(BUILD)/vmm.efi: $(BUILD)/vmm.so
	$(OBJCOPY) -j .text -j .reloc -j .data -j .dynamic -j .rela -j .dynsym \
		-j .dynstr --target efi-app-x86_64 --subsystem=10 $< $@

# Test guests: flat binaries. Real-mode ROMs are one assembly file; 64-bit
# guests are C on the small runtime in tests/guests/lib.
$(BUILD)/guests/%.bin: tests/guests/%.S tests/guests/guest.ld
	@mkdir -p $(dir $@)
	@echo "  GUEST   $@"
	$(Q)$(CC) -c -nostdlib -ffreestanding $< -o $(BUILD)/guests/$*.o
	$(Q)$(LD) -T tests/guests/guest.ld $(BUILD)/guests/$*.o -o $(BUILD)/guests/$*.elf
	$(Q)$(OBJCOPY) -O binary $(BUILD)/guests/$*.elf $@

$(BUILD)/guests/%.bin: tests/guests/%.c $(GUEST_LIB) tests/guests/guest64.ld include/x86/cpu.h \
		include/x86/exception_stubs.S
	@mkdir -p $(dir $@)
	@echo "  GUEST   $@"
	$(Q)$(CC) $(GUEST_CFLAGS) -nostdlib -static -Wl,--build-id=none,--no-warn-rwx-segments \
		-T tests/guests/guest64.ld tests/guests/lib/start.S tests/guests/lib/guest.c $< \
		-o $(BUILD)/guests/$*.elf
	$(Q)$(OBJCOPY) -O binary $(BUILD)/guests/$*.elf $@

# Unit tests: each test file plus the shared sources it exercises.
$(BUILD)/unit/test_fmt: tests/unit/test_fmt.c lib/fmt.c
$(BUILD)/unit/test_config: tests/unit/test_config.c boot/config.c lib/fmt.c
$(BUILD)/unit/test_memmap: tests/unit/test_memmap.c boot/memmap.c lib/fmt.c
$(BUILD)/unit/test_page_alloc: tests/unit/test_page_alloc.c vmm/page_alloc.c
$(BUILD)/unit/test_acpi: tests/unit/test_acpi.c boot/acpi.c lib/fmt.c
$(BUILD)/unit/test_vmx_caps: tests/unit/test_vmx_caps.c vmm/vmx_caps.c lib/fmt.c
$(BUILD)/unit/test_vm_state: tests/unit/test_vm_state.c vmm/vm_state.c
$(BUILD)/unit/test_cpuid_policy: tests/unit/test_cpuid_policy.c vmm/cpuid_policy.c
$(BUILD)/unit/test_vm_lifecycle: tests/unit/test_vm_lifecycle.c vmm/vm.c vmm/vm_state.c lib/fmt.c \
	devices/vuart.c devices/console.c devices/port_bus.c devices/pic.c devices/pit.c \
	devices/rtc.c lib/calendar.c vmm/clock.c vmm/page_alloc.c
$(BUILD)/unit/test_vuart: tests/unit/test_vuart.c devices/vuart.c devices/console.c
$(BUILD)/unit/test_port_bus: tests/unit/test_port_bus.c devices/port_bus.c
$(BUILD)/unit/test_pic: tests/unit/test_pic.c devices/pic.c
$(BUILD)/unit/test_pit: tests/unit/test_pit.c devices/pit.c
$(BUILD)/unit/test_rtc: tests/unit/test_rtc.c devices/rtc.c lib/calendar.c
$(BUILD)/unit/test_proto: tests/unit/test_proto.c mgmt/proto.c
$(BUILD)/unit/test_shell: tests/unit/test_shell.c mgmt/shell.c mgmt/proto.c lib/fmt.c
$(BUILD)/unit/test_switch: tests/unit/test_switch.c vnet/switch.c vnet/dhcp.c lib/fmt.c
$(BUILD)/unit/test_dhcp: tests/unit/test_dhcp.c vnet/dhcp.c lib/fmt.c
$(UNIT_BINS):
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $^ -lcmocka -o $@

unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

e2e: image
	@tests/e2e/run.sh

# Coverage-guided fuzzing of everything a guest or the serial line feeds:
# FUZZ_SECONDS per target (CI uses a short bounded run).
FUZZ_SECONDS ?= 60
fuzz:
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

test: unit e2e

$(BUILD)/bench/switch_bench: tests/bench/switch_bench.c vnet/switch.c vnet/dhcp.c lib/fmt.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 $(WARN) -O2 -I. -Iinclude $^ -o $@

bench: image $(BUILD)/bench/switch_bench
	@$(BUILD)/bench/switch_bench
	@tests/bench/run.sh

run: image
	@tools/run-bochs.sh --config tests/e2e/configs/demo.conf --interactive

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

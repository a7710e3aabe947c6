/*
 * Host NMIs. Servers deliver them on purpose (a BMC's "diagnostic
 * interrupt", a watchdog's pre-timeout, a parity or bus error through
 * port 0x61): one that arrives in root mode is counted and the hypervisor
 * goes on. The handler runs on its own stack (IST) and may have
 * interrupted anything, so it only counts and notes port 0x61; the
 * scheduler's loop logs what it counted (nmi_report).
 */
#ifndef VMM_NMI_H
#define VMM_NMI_H

/* From the NMI's entry: count it, note its platform source. */
void nmi_in_root_mode(void);

/* From the scheduler: logs NMIs counted since the last report. */
void nmi_report(void);

/* The self-test (selftest = nmi): this CPU's local APIC sends it an NMI. */
void nmi_send_self(void);

#endif

/*
 * classic.pml -- SPIN model of engine::classic, the Linux 2.6.38-3.8
 * smp_call_function_many: one global list of per-caller call blocks, each
 * with a live cpumask, an atomic refs count and a csd lock flag, walked by
 * the handlers without the list lock and reused with no grace period
 * (kernel/smp.c of those releases, with the commit "smp_call_function_many:
 * handle concurrent clearing of mask" as the seed fix). See model/README.md.
 *
 * Cast:
 *   caller   CPU 0. Calls smp_call_function_many twice on its own call
 *            block: call 1 without wait, call 2 with wait. Before each call
 *            it refills its input mask with every handler CPU.
 *   handler  CPUs 1..NH. Each runs the IPI handler when its IPI is pending,
 *            and also, OTHER_WALKS times, at any moment: an IPI from some
 *            other caller makes it walk the list too, and such a walk may
 *            meet our block half-way through its reuse.
 *   clearer  other CPUs clearing bits of the caller's input mask at any
 *            moment, any number of times (the seed's live mask).
 *
 * Switches (spin -a -D...):
 *   SEED_FIX        the seed fix: refs counted after `mask & online - self`,
 *                   and when it is 0, unlock the block and return.
 *                   Without it SPIN finds the perma-spin: the block is
 *                   queued with refs == 0, nobody ever unlocks it, and the
 *                   caller's next csd_lock (or its csd_lock_wait) spins
 *                   forever: an invalid end state.
 *   NH=2|3          handler CPUs (default 2).
 *   OTHER_WALKS=n   walks per handler that no IPI of this caller asked
 *                   for (another caller's IPI), at any moment (default 1).
 *                   They must be bounded: a handler that can always walk
 *                   again never lets the system come to rest, and the
 *                   perma-spin is found as a state where nothing can move.
 *   NO_WAIT         neither call waits (by default call 2 waits): the
 *                   perma-spin can then only show in a csd_lock.
 *   REFS_FIRST      mutation: handlers test refs before their mask bit
 *                   (the order the "bit set, then refs" rule forbids).
 *   REFS_BEFORE_ADD mutation: the caller publishes refs before it puts the
 *                   block on the list (the order step 5 forbids).
 *
 * Granularity: one Promela statement per kernel memory access (load, store,
 * or atomic read-modify-write); `atomic { }` only around what the kernel
 * does as one atomic instruction (test_and_clear_bit, atomic_dec_return,
 * spin lock acquire, clear_bit) or around ghost bookkeeping that has no
 * kernel counterpart. Barriers (smp_mb, smp_wmb, smp_rmb, the wmb in
 * list_add_rcu) are comments: SPIN executes every process's statements in
 * program order and every store is visible at once (sequential
 * consistency), so the model shows the algorithm is right when the barriers
 * do their job; it cannot show that the barriers are placed right.
 */

#ifndef NH
#define NH 2
#endif

#if NH == 2
#define ALL 3
#elif NH == 3
#define ALL 7
#else
#error "NH must be 2 or 3"
#endif

#ifndef OTHER_WALKS
#define OTHER_WALKS 1
#endif

#define NCALLS 2

/* call 1 does not wait, call 2 waits (unless NO_WAIT: neither does) */
#ifdef NO_WAIT
#define WAITS(c) false
#else
#define WAITS(c) ((c) == NCALLS)
#endif

#define BIT(cpu) (1 << ((cpu) - 1))      /* handler CPU 1..NH -> mask bit */

/* ---- shared state ------------------------------------------------------ */

byte mask = 0;          /* the caller's input mask (handler CPUs only: the
                           caller's own bit is never set, so the kernel's
                           cpumask_clear_cpu(this_cpu) is a no-op here; all
                           CPUs stay online, so `& cpu_online_mask` is too) */

/* the caller's call block (struct call_function_data) */
bit   blk_lock = 0;     /* csd.flags & CSD_FLAG_LOCK */
byte  blk_func = 0;     /* csd.func/csd.info: which call (1..NCALLS) */
byte  blk_mask = 0;     /* data->cpumask: CPUs that still owe a run */
short refs = 0;         /* atomic_t refs (signed: a bug may take it below 0) */
bit   on_list = 0;      /* the block is on call_function.queue; with one
                           caller it is the only entry, so the list is
                           "head -> block -> head" or "head -> head" */
bit   list_lock = 0;    /* call_function.lock (list add and delete only) */

bit   ipi[NH + 1];      /* a pending CALL_FUNCTION IPI per handler CPU */

/* ---- ghost state for the properties ------------------------------------ */

byte  ran[NCALLS + 1];  /* ran[c]: CPUs that ran call c's function */
byte  whole[NCALLS + 1];/* whole[c]: CPUs in the input mask for the whole
                           of call c (the mask only shrinks during a call,
                           so it is the mask at the step the call returns) */

/* ---- small helpers ----------------------------------------------------- */

/* lowest CPU whose bit is set in m (m != 0) */
inline lowest_cpu(m, cpu) {
  if
  :: (m & 1) != 0 -> cpu = 1
  :: (m & 1) == 0 && (m & 2) != 0 -> cpu = 2
  :: (m & 3) == 0 -> cpu = 3
  fi
}

/* bits of CPUs above cpu */
#define ABOVE(cpu) (ALL & ~((1 << (cpu)) - 1))

#define WEIGHT(m) (((m) & 1) + (((m) >> 1) & 1) + (((m) >> 2) & 1))

/* the function runs on `me` for call c: at most once per CPU and call */
inline run_func(c, me) {
  atomic {
    assert((ran[c] & BIT(me)) == 0);     /* guarantee 2: no double run */
    ran[c] = ran[c] | BIT(me)
  }
}

/* ---- the handler: generic_smp_call_function_interrupt ------------------ */

proctype handler(byte me) {
  byte  f;
  byte  was;
  short r;
  byte  other = 0;

end_idle:
  do
  :: atomic { ipi[me] -> ipi[me] = 0 }   /* the IPI is taken */
     goto walk
  :: other < OTHER_WALKS ->              /* a walk for some other reason: an
                                            IPI from another caller */
     other++;
     goto walk
  od;

walk:
  /* smp_mb(): the list addition is visible once the IPI arrived */
  /* list_for_each_entry_rcu: load head->next */
  if
  :: on_list == 0 -> goto end_idle       /* empty list */
  :: else                               /* points at our caller's block */
  fi;

  /* visit the block. It may have been completed, removed and be in the
     middle of reuse by now: nothing below may assume otherwise. */
#ifndef REFS_FIRST
  if
  :: (blk_mask & BIT(me)) == 0 -> goto next   /* not for this CPU */
  :: else
  fi;
  /* smp_rmb() */
  if
  :: refs == 0 -> goto next              /* not ready, or being reused */
  :: else
  fi;
#else
  if
  :: refs == 0 -> goto next
  :: else
  fi;
  if
  :: (blk_mask & BIT(me)) == 0 -> goto next
  :: else
  fi;
#endif

  f = blk_func;                          /* func = data->csd.func */
  run_func(f, me);                       /* func(data->csd.info) */

  /* cpumask_test_and_clear_cpu(cpu, data->cpumask) */
  atomic {
    was = blk_mask & BIT(me);
    blk_mask = blk_mask & ~BIT(me)
  };
  /* clear already: func re-enabled irqs and ran twice (kernel WARN) */
  assert(was != 0);

  /* refs = atomic_dec_return(&data->refs); WARN_ON(refs < 0) */
  atomic { refs = refs - 1; r = refs };
  assert(r >= 0);
  if
  :: r != 0 -> goto next
  :: else
  fi;

  assert(blk_mask == 0);                 /* WARN_ON(!cpumask_empty) */
  /* raw_spin_lock(&call_function.lock); list_del_rcu; unlock */
  atomic { list_lock == 0 -> list_lock = 1 };
  assert(on_list == 1);                  /* deleting a block not on the list
                                            corrupts it */
  on_list = 0;                           /* list_del_rcu keeps block->next,
                                            so a walker on it moves on to
                                            the head: the walk ends */
  list_lock = 0;
  /* csd_unlock: WARN_ON(!locked); smp_mb(); flags &= ~LOCK */
  assert(blk_lock == 1);
  blk_lock = 0;

next:
  /* block->next is the head (the only entry): the walk ends */
  goto end_idle
}

/* ---- the process that clears bits of the caller's input mask ------------ */

active proctype clearer() {
end_clear:
  do
  :: atomic { (mask & BIT(1)) != 0 -> mask = mask & ~BIT(1) }
  :: atomic { (mask & BIT(2)) != 0 -> mask = mask & ~BIT(2) }
#if NH >= 3
  :: atomic { (mask & BIT(3)) != 0 -> mask = mask & ~BIT(3) }
#endif
  od
}

/* ---- the caller: smp_call_function_many on CPU 0 ------------------------ */

active proctype caller() {
  byte c = 1;
  byte m;
  byte cpu;
  byte cnt;
  byte i;

  do
  :: c > NCALLS -> break
  :: else ->
    mask = ALL;                          /* the caller builds its argument */

    /* 1. fast path: cpumask_first_and(mask, online) ... */
    m = mask;
    if
    :: m == 0 -> goto ret                /* no online CPU in the mask */
    :: else
    fi;
    lowest_cpu(m, cpu);
    /* ... then cpumask_next_and(cpu, mask, online): the mask again */
    m = mask;
    if
    :: (m & ABOVE(cpu)) == 0 ->
      /* exactly one CPU: smp_call_function_single(cpu). It uses the
         per-CPU single-call queue, not the call block; not modelled
         beyond "it runs the function on cpu once". */
      run_func(c, cpu);
      goto ret
    :: else
    fi;

    /* 2. csd_lock(&data->csd): spin until the lock flag is clear, set it,
       smp_mb(). A block nobody unlocks makes this spin forever: the
       perma-spin, an invalid end state in SPIN's terms. */
    blk_lock == 0;
    blk_lock = 1;
    /* BUG_ON(atomic_read(&data->refs) || !cpumask_empty(data->cpumask)) */
    assert(refs == 0 && blk_mask == 0);

    /* 3. refs = 0 (convert a 3rd-party write to a 1st-party one), func,
       info; smp_wmb() */
    refs = 0;
    blk_func = c;

    /* 4. cpumask_and(data->cpumask, mask, online): load, then store;
       cpumask_clear_cpu(this_cpu): no-op here; refs = weight(cpumask) */
    m = mask;
    blk_mask = m;
    cnt = WEIGHT(blk_mask);
#ifdef SEED_FIX
    if
    :: cnt == 0 ->                       /* the mask was cleared since 1. */
      assert(blk_lock == 1);
      blk_lock = 0;                      /* csd_unlock, return */
      goto ret
    :: else
    fi;
#endif

    /* 5. under the list lock: add at the head, then publish refs */
#ifdef REFS_BEFORE_ADD
    refs = cnt;
#endif
    atomic { list_lock == 0 -> list_lock = 1 };
    assert(on_list == 0);                /* adding an entry already on the
                                            list corrupts it */
    on_list = 1;                         /* list_add_rcu (its wmb orders the
                                            cpumask before refs) */
#ifndef REFS_BEFORE_ADD
    refs = cnt;
#endif
    list_lock = 0;

    /* 6. smp_mb(); arch_send_call_function_ipi_mask(data->cpumask): the
       mask may be empty already, its CPUs having run the call. */
    i = 1;
    do
    :: i > NH -> break
    :: else ->
      atomic {
        if
        :: (blk_mask & BIT(i)) != 0 -> ipi[i] = 1
        :: else
        fi
      };
      i++
    od;

    /* 7. wait: csd_lock_wait, spin until the lock flag clears */
    if
    :: WAITS(c) -> blk_lock == 0
    :: else
    fi;

ret:
    /* the call returns at this step */
    whole[c] = mask;
    if
    :: WAITS(c) ->                       /* a waiting call: done everywhere */
      assert((ran[c] & whole[c]) == whole[c])
    :: else
    fi;
    c++
  od;

  /* the caller's next csd_lock waits for its no-wait call to complete */
  blk_lock == 0;
  c = 1;
  do
  :: c > NCALLS -> break
  :: else ->
    /* guarantee 1: a CPU in the mask for the whole call ran it */
    assert((ran[c] & whole[c]) == whole[c]);
    c++
  od
}

init {
  byte i = 1;
  atomic {
    do
    :: i > NH -> break
    :: else -> run handler(i); i++
    od
  }
}

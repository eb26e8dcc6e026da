/* Kill safety of fine-tuning: child processes fine-tune into a file and are killed with
 * SIGKILL at chosen moments, from their own progress callback (between steps, before and
 * after an epoch is saved) or by this process as soon as a save's temporary file appears
 * (while it is being written). Each time, every weights file present must be a complete
 * checkpoint with the base model's tensors: a killed run never leaves a broken file. A run
 * that ends normally leaves no temporary file. This process never runs LibTorch itself (its
 * checks read files in pure C), so forking it is safe. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "finetune_fixture.h"
#include "io/checkpoint.h"
#include "io/delta.h"

enum { CHILD_FIXTURE_FAILED = 3, CHILD_TRAIN_FAILED = 4 };

static int kill_at_report;           /* the child's progress report that raises SIGKILL */
static int reports;

/* Counts the step reports only ("finetune"), not the epochs' ("finetune-epoch"). */
static int kill_in_progress(void *user, const dc_progress *p)
{
    (void)user;
    if (strcmp(p->stage, "finetune") == 0 && ++reports == kill_at_report)
        raise(SIGKILL);
    return 0;
}

/* The child: fine-tunes (2 epochs x 2 images x 3 steps = 12 reports) into dir/name. */
static void child_train(const char *dir, const char *name, int kill_at)
{
    char cache[1300], out[1300];
    snprintf(cache, sizeof cache, "%s/cache.dclat", dir + strlen(test_tmpdir()) + 1);
    snprintf(out, sizeof out, "%s/%s", dir, name);
    ft_fixture f;
    if (!fixture_init(&f, cache))
        _exit(CHILD_FIXTURE_FAILED);
    kill_at_report = kill_at;
    f.options.progress = kill_in_progress;
    dc_finetuner *ft = NULL;
    if (dc_finetuner_new(&ft, f.base, f.clip, f.tokenizer, NULL, f.cache, &f.options) != DC_OK ||
        dc_finetuner_train(ft, 0, out) != DC_OK) {
        fprintf(stderr, "child: %s\n", dc_last_error());
        _exit(CHILD_TRAIN_FAILED);
    }
    _exit(0);                            /* no atexit: the parent owns the temporary dir */
}

static const char *scenario_dir(char *buf, size_t size, const char *name)
{
    path_join(buf, size, test_tmpdir(), name);
    mkdir(buf, 0755);
    return buf;
}

/* The base model's state dict, read once, to compare saved files with. */
static io_state_dict base_sd;

static int load_base(void)
{
    char golden[1024], path[1300];
    if (base_sd.count)
        return 1;
    if (!golden_case("ddpm_unet", golden, sizeof golden))
        return 0;
    if (io_checkpoint_read_file(path_join(path, sizeof path, golden, "model.pt"), &base_sd) !=
        DC_OK) {
        test_fail_at(__FILE__, __LINE__, "%s", dc_last_error());
        return 0;
    }
    return 1;
}

/* Absent, or a complete file with every tensor of the base (by name and shape). */
static int absent_or_complete(const char *path)
{
    if (access(path, F_OK) != 0)
        return 1;
    io_state_dict sd;
    char base_id[IO_DELTA_BASE_ID_SIZE];
    size_t len = strlen(path);
    int status = len > 6 && strcmp(path + len - 6, ".delta") == 0
                     ? io_delta_read_file(path, base_id, &sd)
                     : io_checkpoint_read_file(path, &sd);
    if (status != DC_OK) {
        printf("  %s: %s\n", path, dc_last_error());
        return 0;
    }
    int ok = sd.count == base_sd.count;
    for (size_t i = 0; ok && i < sd.count; i++) {
        const dc_tensor *a = &sd.tensors[i].value, *b = &base_sd.tensors[i].value;
        ok = strcmp(sd.tensors[i].name, base_sd.tensors[i].name) == 0 && a->ndim == b->ndim &&
             memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0;
    }
    io_state_dict_free(&sd);
    return ok;
}

/* Every file a run into dir/stem.ext may leave is absent or complete. */
static int outputs_intact(const char *dir, const char *stem, const char *ext, int *present)
{
    char path[1400];
    int ok = 1;
    *present = 0;
    snprintf(path, sizeof path, "%s/%s%s", dir, stem, ext);
    ok &= absent_or_complete(path);
    *present += access(path, F_OK) == 0;
    snprintf(path, sizeof path, "%s/%s.epoch1%s", dir, stem, ext);
    ok &= absent_or_complete(path);
    *present += access(path, F_OK) == 0;
    return ok;
}

static int hidden_files(const char *dir)
{
    DIR *d = opendir(dir);
    int count = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        count += e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return count;
}

static int wait_child(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

TEST(a_run_killed_between_steps_leaves_complete_files_or_none)
{
    if (!load_base())
        return;
    /* report 1: nothing saved; 6: epoch 1 ends (the save comes after it); 7: epoch 1 saved;
     * 12: the last report before the final save */
    const int moments[] = {1, 6, 7, 12};
    for (size_t k = 0; k < sizeof moments / sizeof moments[0]; k++) {
        char name[64], dir[1300];
        snprintf(name, sizeof name, "kill_step_%d", moments[k]);
        scenario_dir(dir, sizeof dir, name);
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            child_train(dir, "ft.pt", moments[k]);
        int status = wait_child(pid);
        CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
               "child at report %d: status %d", moments[k], status);
        int present;
        CHECKF(outputs_intact(dir, "ft", ".pt", &present), "killed at report %d", moments[k]);
        CHECKF(present == (moments[k] >= 7), "killed at report %d: %d files", moments[k],
               present);
    }
}

TEST(a_run_killed_while_writing_a_save_leaves_complete_files_or_none)
{
    if (!load_base())
        return;
    const char *const exts[] = {".pt", ".delta", ".safetensors"};
    for (size_t k = 0; k < sizeof exts / sizeof exts[0]; k++) {
        /* Kill on the first (epoch 1) and the second (final) save's temporary file. */
        for (int nth = 1; nth <= 2; nth++) {
            char name[64], dir[1300], out[64], prefix[64];
            snprintf(name, sizeof name, "kill_write_%zu_%d", k, nth);
            scenario_dir(dir, sizeof dir, name);
            snprintf(out, sizeof out, "ft%s", exts[k]);
            snprintf(prefix, sizeof prefix, ".ft.");
            int fd = inotify_init1(IN_CLOEXEC);
            CHECK(fd >= 0);
            CHECK(inotify_add_watch(fd, dir, IN_CREATE) >= 0);
            fflush(stdout);
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0)
                child_train(dir, out, 0);
            int seen = 0, killed = 0;
            while (!killed) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                /* The timeout only guards against a child that died before any save. */
                if (poll(&p, 1, 120000) <= 0)
                    break;
                char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                ssize_t n = read(fd, events, sizeof events);
                for (char *e = events; n > 0 && e < events + n && !killed;) {
                    const struct inotify_event *ev = (const struct inotify_event *)e;
                    if (ev->len && strncmp(ev->name, prefix, strlen(prefix)) == 0 &&
                        ++seen == nth) {
                        kill(pid, SIGKILL);
                        killed = 1;
                    }
                    e += sizeof *ev + ev->len;
                }
            }
            close(fd);
            if (!killed)
                kill(pid, SIGKILL);
            wait_child(pid);
            CHECKF(killed, "%s: no save was seen", out);
            int present;
            CHECKF(outputs_intact(dir, "ft", exts[k], &present), "%s killed in save %d", out,
                   nth);
            printf("  %s killed in save %d: %d complete file(s), %d temporary file(s) left\n",
                   out, nth, present, hidden_files(dir));
            /* The save may even have completed before the signal landed. */
            CHECKF(present >= nth - 1, "%s killed in save %d: %d files", out, nth, present);
        }
    }
}

TEST(a_run_that_ends_normally_leaves_no_temporary_file)
{
    if (!load_base())
        return;
    char dir[1300];
    scenario_dir(dir, sizeof dir, "normal");
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        child_train(dir, "ft.pt", 0);
    int status = wait_child(pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    int present;
    CHECK(outputs_intact(dir, "ft", ".pt", &present));
    CHECK(present == 1);
    CHECK(hidden_files(dir) == 0);
}
